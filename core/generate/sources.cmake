# The generate wing: KV caches and the sampler chain.
target_sources(ominix_core PRIVATE
  generate/attention.cpp
  generate/cache.cpp
  generate/sampler.cpp
)
# The generation loop and speculative decoding.
target_sources(ominix_core PRIVATE
  generate/generate.cpp
  generate/speculative.cpp
)

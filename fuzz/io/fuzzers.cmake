# GGUF reader: metadata, tokenizer data, every tensor dequantized and repacked
add_executable(fuzz_gguf ${CMAKE_CURRENT_LIST_DIR}/fuzz_gguf.cpp)
target_link_libraries(fuzz_gguf PRIVATE ominix::core)
ominix_fuzz_target(fuzz_gguf MAX_LEN 16384 SEEDS "tests/fixtures/gguf/*.gguf")
# end GGUF reader
# safetensors
add_executable(fuzz_safetensors ${CMAKE_CURRENT_LIST_DIR}/fuzz_safetensors.cpp)
target_link_libraries(fuzz_safetensors PRIVATE ominix::core)
ominix_fuzz_target(fuzz_safetensors MAX_LEN 65536
  SEEDS "tests/fixtures/core/*.safetensors" "tests/fixtures/core/*/*.safetensors"
        "tests/fixtures/torch_zip/*.safetensors" "tests/fixtures/generate/*.safetensors"
        "tests/fixtures/models/*/*/expected.safetensors")
# end safetensors
# PyTorch zip checkpoints
add_executable(fuzz_torch_zip ${CMAKE_CURRENT_LIST_DIR}/fuzz_torch_zip.cpp)
target_link_libraries(fuzz_torch_zip PRIVATE ominix::core)
ominix_fuzz_target(fuzz_torch_zip MAX_LEN 16384 SEEDS "tests/fixtures/torch_zip/*.pt")
# end PyTorch zip checkpoints
# config.json of the language-model families
add_executable(fuzz_config_json ${CMAKE_CURRENT_LIST_DIR}/fuzz_config_json.cpp)
target_link_libraries(fuzz_config_json PRIVATE ominix::core)
ominix_fuzz_target(fuzz_config_json MAX_LEN 8192
  SEEDS "tests/fixtures/models/*/*/config.json" "tests/fixtures/models/*/*/*/config.json"
        "tests/fixtures/models/*/*/generation_config.json" "tests/fixtures/core/*/config.json")
# end config.json

// Tokenizers stored in GGUF metadata (tokenizer.ggml.*), built to give the ids transformers gives
// for the same file (AutoTokenizer.from_pretrained(dir, gguf_file=...), transformers 5.24
// integrations/gguf/gguf_tokenizer_mapping.py).
#pragma once

#include <string>

#include "ominix/io/gguf.h"
#include "ominix/text/chat_template.h"
#include "ominix/text/tokenizer.h"

namespace ominix::text {

/// The tokenizer of a GGUF file. Supported: tokenizer.ggml.model "gpt2" (byte-level BPE with the
/// file's merges, split by tokenizer.ggml.pre's regex: qwen2, glm4, llama-bpe and the other names
/// transformers knows; GPT-2's own otherwise) of any architecture, and "llama" (SentencePiece BPE
/// with byte fallback) of the Gemma architectures (gemma, gemma2, gemma3: GemmaTokenizer, merges
/// rebuilt from the vocabulary in file order). `architecture` is general.architecture; `source`
/// names the file in errors. UnsupportedError for other kinds.
Tokenizer tokenizer_from_gguf(const io::GgufTokenizerData& data, const std::string& architecture,
                              const std::string& source);

/// tokenizer.chat_template with the special tokens transformers passes (bos/eos/unk/pad token
/// strings), or nullopt when the file has no template.
std::optional<ChatTemplate> chat_template_from_gguf(const io::GgufTokenizerData& data);

}  // namespace ominix::text

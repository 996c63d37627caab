// Real chat templates (Qwen2.5, Qwen3, GLM-4, Mistral v0.3, Mixtral, Gemma 3) against
// transformers' apply_chat_template(tokenize=False): cases_templates.json, byte for byte.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ominix/text/chat_template.h"

namespace ominix::text {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << p;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const fs::path kFixtures = OMINIX_TEMPLATE_FIXTURES;

TEST(ChatTemplate, RealTemplatesMatchTransformers) {
  ojson doc = ojson::parse(read_text(kFixtures / "cases_templates.json"));
  std::map<std::string, ChatTemplate> templates;
  for (const auto& [name, tokens] : doc["special_tokens"].items()) {
    std::vector<std::pair<std::string, std::string>> special;
    for (const auto& [k, v] : tokens.items()) special.emplace_back(k, v.get<std::string>());
    templates.emplace(name, ChatTemplate(read_text(kFixtures / (name + ".jinja")), special));
  }
  int ok = 0;
  for (const auto& c : doc["cases"]) {
    const std::string name = c["template"].get<std::string>();
    const std::string conv = c["conversation"].get<std::string>();
    SCOPED_TRACE(name + " / " + conv + " / " + c.dump().substr(0, 160));
    RenderOptions opts;
    opts.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    if (c.contains("tools")) opts.tools = doc["tools"];
    if (c.contains("extra")) opts.extra = c["extra"];
    const ChatTemplate& tmpl = templates.at(name);
    const ojson& messages = doc["conversations"][conv];
    if (c.contains("output")) {
      try {
        std::string out = tmpl.render(messages, opts);
        EXPECT_EQ(out, c["output"].get<std::string>());
        if (out == c["output"].get<std::string>()) ++ok;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "unexpected error: " << e.what();
      }
    } else {
      const std::string expected = c["error"].get<std::string>();
      try {
        tmpl.render(messages, opts);
        ADD_FAILURE() << "expected error: " << expected;
      } catch (const TemplateRaised& e) {
        EXPECT_EQ("TemplateError: " + e.message(), expected);
        ++ok;
      } catch (const TemplateError& e) {
        EXPECT_EQ(expected.rfind("TemplateError: ", 0), std::string::npos)
            << "expected raise_exception: " << expected << " got " << e.what();
        ++ok;
      }
    }
  }
  EXPECT_EQ(ok, static_cast<int>(doc["cases"].size()));
}

TEST(ChatTemplate, FromSharedQwen3ModelDir) {
  fs::path dir = fs::path(OMINIX_SHARED_TOKENIZERS) / "qwen3";
  ASSERT_TRUE(fs::exists(dir / "tokenizer_config.json"))
      << dir << ": the shared/ data must sit beside the clone";
  ChatTemplate t = ChatTemplate::from_model_dir(dir);
  EXPECT_EQ(t.source(), read_text(kFixtures / "qwen3.jinja"));
  // bos_token is null in Qwen3's config: not passed. eos and pad are.
  std::vector<std::pair<std::string, std::string>> expected = {{"eos_token", "<|im_end|>"},
                                                               {"pad_token", "<|endoftext|>"}};
  EXPECT_EQ(t.special_tokens(), expected);
  ojson doc = ojson::parse(read_text(kFixtures / "cases_templates.json"));
  for (const auto& c : doc["cases"]) {
    if (c["template"] != "qwen3" || !c.contains("output")) continue;
    RenderOptions opts;
    opts.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    if (c.contains("tools")) opts.tools = doc["tools"];
    if (c.contains("extra")) opts.extra = c["extra"];
    EXPECT_EQ(t.render(doc["conversations"][c["conversation"].get<std::string>()], opts),
              c["output"].get<std::string>());
  }
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("ominix_tpl_" + std::to_string(reinterpret_cast<uintptr_t>(this)) + "_" +
             std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    fs::create_directories((path_ / name).parent_path());
    std::ofstream(path_ / name, std::ios::binary) << text;
  }

 private:
  fs::path path_;
};

TEST(ChatTemplate, NamedTemplatesAndAddedTokens) {
  TempDir d;
  ojson config = {
      {"bos_token", {{"content", "<s>"}, {"lstrip", false}, {"__type", "AddedToken"}}},
      {"eos_token", "</s>"},
      {"chat_template",
       ojson::array({{{"name", "default"}, {"template", "D{{ bos_token }}{{ eos_token }}"}},
                     {{"name", "tool_use"}, {"template", "T{{ tools | length }}"}}})}};
  d.write("tokenizer_config.json", config.dump());
  ChatTemplate t = ChatTemplate::from_model_dir(d.path());
  ojson msgs = ojson::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(t.render(msgs), "D<s></s>");
  RenderOptions o;
  o.tools = ojson::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  EXPECT_EQ(t.render(msgs, o), "T1");
}

TEST(ChatTemplate, JinjaFileWinsOverConfig) {
  TempDir d;
  d.write("tokenizer_config.json", R"({"chat_template": "config", "eos_token": "E"})");
  d.write("chat_template.jinja", "file {{ messages[0].content }}{{ eos_token }}\n");
  ChatTemplate t = ChatTemplate::from_model_dir(d.path());
  EXPECT_EQ(t.render(ojson::parse(R"([{"role": "user", "content": "x"}])")), "file xE");
}

TEST(ChatTemplate, ErrorsNameTheFile) {
  TempDir d;
  d.write("tokenizer_config.json", R"({"chat_template": "ok\n{% if %}"})");
  try {
    ChatTemplate::from_model_dir(d.path());
    FAIL() << "no error";
  } catch (const TemplateError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
    EXPECT_EQ(e.line(), 2);
  }
  TempDir empty;
  EXPECT_THROW(ChatTemplate::from_model_dir(empty.path()), ConfigError);
  TempDir bad;
  bad.write("tokenizer_config.json", "{not json");
  EXPECT_THROW(ChatTemplate::from_model_dir(bad.path()), FormatError);
}

TEST(ChatTemplate, RejectsMalformedMessages) {
  ChatTemplate t("{{ messages | length }}");
  EXPECT_THROW(t.render(ojson::array()), InvalidArgument);
  EXPECT_THROW(t.render(ojson::object()), InvalidArgument);
  EXPECT_THROW(t.render(ojson::parse("[1]")), InvalidArgument);
  EXPECT_EQ(t.render(ojson::parse(R"([{"role": "user", "content": null}])")), "1");
}

}  // namespace
}  // namespace ominix::text

#include "statewall/rules/load_compile.hpp"

#include <iterator>
#include <utility>

namespace statewall::rules {
namespace {

LoadCompileResult compileLoaded(LoadResult loaded) {
  LoadCompileResult out;
  out.diagnostics = std::move(loaded.diagnostics);
  if (!loaded.ok()) return out;
  out.loaded = true;
  CompileResult compiled = compile(*loaded.policy);
  out.diagnostics.insert(out.diagnostics.end(),
                         std::make_move_iterator(compiled.diagnostics.begin()),
                         std::make_move_iterator(compiled.diagnostics.end()));
  // compile() returns no policy when it reports an error; the check keeps that promise local.
  if (compiled.policy && !hasErrors(out.diagnostics)) out.policy = std::move(compiled.policy);
  return out;
}

}  // namespace

LoadCompileResult loadAndCompile(const std::vector<std::string>& paths) {
  return compileLoaded(loadPolicyFiles(paths));
}

LoadCompileResult loadAndCompile(const std::vector<SourceText>& docs) {
  return compileLoaded(loadPolicyTexts(docs));
}

}  // namespace statewall::rules

//===- StandardFlags.h - --help and --version for the plain-C++ tools ------===//
#pragma once

#include <iostream>
#include <string>

namespace longctx {

/// Answers --help/-h and --version wherever they appear on the command line;
/// returns true when the tool should exit 0 without doing anything else.
inline bool answerHelpOrVersion(int argc, char **argv, const char *tool, const char *help) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << help;
      return true;
    }
    if (arg == "--version") {
      std::cout << tool << " " << LONGCTX_VERSION << "\n";
      return true;
    }
  }
  return false;
}

} // namespace longctx

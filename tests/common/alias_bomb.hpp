// A YAML alias bomb for the hostile-input tests (issue 14): nested anchors, 400 CIDRs aliased by
// each of 100 rules, aliased by each of 100 groups (4,000,000 peers) from about 11 KB of YAML.
#pragma once

#include <string>

namespace statewall::testing {

inline std::string yamlAliasBomb() {
  std::string t = "version: 1\nprefix_lists:\n  p: &p [";
  for (int i = 0; i < 400; ++i)
    t += (i ? ", " : "") + std::to_string(10 + i / 250) + "." + std::to_string(i % 250) + ".0.0/16";
  t += "]\ngroups:\n  base:\n    inbound: &r [";
  for (int i = 0; i < 100; ++i)
    t += std::string(i ? ", " : "") + "{proto: tcp, ports: 443, from: *p}";
  t += "]\n";
  for (int i = 0; i < 100; ++i)
    t += "  g" + std::to_string(i) + ": {inbound: *r}\n";
  return t;
}

}  // namespace statewall::testing

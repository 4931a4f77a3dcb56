// Private to rules/: what each document loader produces, and the checks both loaders share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "statewall/rules/diagnostic.hpp"
#include "statewall/rules/ip.hpp"
#include "statewall/rules/policy.hpp"
#include "statewall/rules/vocab.hpp"

namespace statewall::rules::internal {

// A reference written as an AWS id (sg-..., pl-...). The loader stores the id in the referring
// name field; loader.cpp replaces it with the referenced object's name once every document is
// read. An id that nothing defines stays as it is, and validatePolicy() reports it.
enum class IdRefKind : uint8_t { kGroupPeer, kPrefixListPeer, kInterfaceGroup };
struct IdRef {
  IdRefKind kind = IdRefKind::kGroupPeer;
  size_t owner = 0;  // index into groups (peers) or interfaces
  Direction dir = Direction::kInbound;
  size_t rule = 0;  // rule index (peers only)
  size_t item = 0;  // peer index, or index into Interface::groups
};

// describe-network-acls names the subnets of an ACL (Associations[].SubnetId); the subnets may
// come from another document, so the link is made after all documents are read.
struct AclAssociation {
  size_t acl = 0;  // index into acls
  std::string subnet_id;
  SourceLoc loc;
};

// describe-network-interfaces names the interface's subnet; checked against its addresses.
struct InterfaceSubnet {
  size_t iface = 0;  // index into interfaces
  std::string subnet_id;
  SourceLoc loc;
};

// What one document contributes to the policy.
struct Fragment {
  Policy policy;  // `files`, settings and collections from this document only
  std::optional<SourceLoc> timeouts_at;  // set when the document sets the policy-wide settings
  std::optional<SourceLoc> unprotected_at;
  std::optional<SourceLoc> strict_at;
  std::optional<SourceLoc> exempt_at;
  std::vector<IdRef> id_refs;
  std::vector<AclAssociation> acl_associations;
  std::vector<InterfaceSubnet> interface_subnets;
};

// Parses one YAML policy document into `out`, appending diagnostics.
void loadYaml(const std::string& file, const std::string& text, Fragment& out, Diagnostics& diags);

// When `text` is AWS JSON (an object with one of the AWS top-level keys, or a .json file or an
// AWS-looking text that fails to parse as JSON) parses it into `out` and returns true; returns
// false, touching nothing, when the text should be read as YAML.
bool tryLoadAwsJson(const std::string& file, const std::string& text, Fragment& out,
                    Diagnostics& diags);

// Which values of a Terraform plan a document stands for: the planned values (the default, or a
// name ending in "#planned") or the prior state (a name ending in "#prior", e.g. plan.json#prior).
enum class TerraformValues : uint8_t { kPlanned, kPrior };
std::optional<TerraformValues> terraformSelector(std::string_view name);

// When `text` is the JSON of `terraform show -json` (a plan or a state: an object with
// format_version, or terraform.tfstate itself, which is an error) parses it into `out` and
// returns true; returns false, touching nothing, for any other text (terraform_loader.cpp).
bool tryLoadTerraformJson(const std::string& file, const std::string& text, Fragment& out,
                          Diagnostics& diags);

// ---- Shared by both loaders (validate.cpp) ----

void addError(Diagnostics& diags, const SourceLoc& loc, std::string message);
void addWarning(Diagnostics& diags, const SourceLoc& loc, std::string message);

// `text` cut to at most `max` bytes with "..." at the end when longer, never inside a UTF-8
// character (messages quote what the file had; they must stay valid UTF-8 for --json).
std::string shorten(std::string_view text, size_t max);

// A decimal integer ("-1", "443"); nullopt for anything else, including overflow.
std::optional<long long> parseInteger(std::string_view text);

// Parses a CIDR (or a bare address, meaning a host prefix). Bad text is an error; host bits set
// beyond the prefix are a warning and the result is canonicalised, as AWS does.
// `what` names the field in the message ("CIDR", "subnet CIDR", ...).
std::optional<Cidr> checkCidr(std::string_view text, const SourceLoc& loc, Diagnostics& diags,
                              std::string_view what = "CIDR");

// A VPC CIDR must hold its base + 2 (the Amazon DNS address): at most /30 for IPv4, /126 for IPv6.
bool checkVpcCidr(const Cidr& c, const SourceLoc& loc, Diagnostics& diags);

// Port range checks: each 0..65535 and lo <= hi. Reports at the location of the bad value.
bool checkPortRange(long long lo, long long hi, const SourceLoc& lo_loc, const SourceLoc& hi_loc,
                    Diagnostics& diags, Match& out);

// ICMP type/code checks: each -1..255, and no code without a type.
bool checkIcmp(long long type, long long code, const SourceLoc& type_loc, const SourceLoc& code_loc,
               Diagnostics& diags, Match& out);

}  // namespace statewall::rules::internal

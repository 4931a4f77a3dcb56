// The control plane's status is the library-wide one (base/include/statewall/base/status.hpp):
// it carries a message only; the HTTP status an API error gets is chosen where the response is
// written (control/src/api.cpp), not carried here (docs/design.md, "Errors").
#pragma once

#include "statewall/base/status.hpp"

namespace statewall::control {

using Status = base::Status;

}  // namespace statewall::control

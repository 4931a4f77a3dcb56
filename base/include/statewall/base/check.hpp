// Invariant checks: how code here stops on an impossible state (docs/design.md, "Errors").
//
//   STATEWALL_CHECK(cond, message)   always evaluated; on false prints FILE:LINE, the condition
//                                    and the message to stderr and aborts.
//   STATEWALL_DCHECK(cond, message)  the same in builds without NDEBUG (debug, ASan+UBSan);
//                                    in release the condition is compiled but never evaluated.
//   STATEWALL_FAIL(message)          an unconditional stop where no condition reads better
//                                    (the end of an exhaustive search, a builder misused).
//
// Only for bugs and for the machine's own limits: bad input never reaches these (it gets a
// Diagnostic or a Status). No allocation and no exceptions, so the per-packet path may use them;
// the failing branch is out of line and marked unlikely. `message` is a C string.
#pragma once

namespace statewall::base {

// Prints "statewall: FILE:LINE: check failed: CONDITION: MESSAGE" (or, condition null,
// "statewall: FILE:LINE: fatal: MESSAGE") to stderr and aborts. Any thread (not a signal handler).
[[noreturn]] void checkFailed(const char* file, int line, const char* condition,
                              const char* message) noexcept;

}  // namespace statewall::base

#define STATEWALL_CHECK(cond, message)                                      \
  do {                                                                      \
    if (__builtin_expect(!(cond), 0))                                       \
      ::statewall::base::checkFailed(__FILE__, __LINE__, #cond, (message)); \
  } while (0)

#define STATEWALL_FAIL(message) \
  ::statewall::base::checkFailed(__FILE__, __LINE__, nullptr, (message))

#ifdef NDEBUG
#define STATEWALL_DCHECK(cond, message) \
  do {                                  \
    if (false) {                        \
      (void)(cond);                     \
      (void)(message);                  \
    }                                   \
  } while (0)
#else
#define STATEWALL_DCHECK(cond, message) STATEWALL_CHECK(cond, message)
#endif

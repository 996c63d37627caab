// One exception hierarchy for everything OminiX reports to its users.
// Every message names what is at fault: the file, the tensor, the config field.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace ominix {

/// Base of all OminiX errors. Catch this at the top of an application.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file could not be opened, read or written.
class IoError : public Error {
 public:
  using Error::Error;
};

/// A file was read but its content is malformed (truncated, inconsistent header, bad JSON...).
class FormatError : public Error {
 public:
  using Error::Error;
};

/// A config field is missing, of the wrong type or out of range.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// Checkpoint tensors are missing, unexpected, or have the wrong shape or dtype.
class WeightError : public Error {
 public:
  using Error::Error;
};

/// The input is valid but asks for something OminiX does not implement.
class UnsupportedError : public Error {
 public:
  using Error::Error;
};

/// A caller broke an API precondition (bad shapes, bad options).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// Throws E with a fmt-formatted message.
template <typename E = Error, typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw E(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace ominix

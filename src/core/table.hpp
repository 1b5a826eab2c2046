#pragma once
// Tables for stdout: aligned text for people, csv | md | json for tools and
// papers (llama-bench style). One class so every command prints alike.

#include <string>
#include <vector>

namespace qnas::core {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row);
  /// format: text | csv | md | json. json: an array of objects keyed by header.
  std::string render(const std::string& format = "text") const;
  static bool valid_format(const std::string& format);

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

/// Number formatting helpers for tables.
std::string fixed(double v, int decimals);
/// Shortest decimal text that reads back as the same double (0.286, not
/// 0.28599999999999998): for files that must round-trip.
std::string shortest(double v);
/// `digits` significant digits, exponent form where shorter: 0.000123, 4.56e-08.
std::string significant(double v, int digits);
/// 1234567 -> "1.23M", 1234 -> "1.23k".
std::string si(double v);

}  // namespace qnas::core

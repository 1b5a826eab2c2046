// The files a resumed search and `qnas pareto` / `qnas predict` read are
// outside input too: every malformed field is a clear error naming the file,
// never undefined behaviour (a float cast to int out of range, a gene that
// indexes past its choices).
#include <gtest/gtest.h>

#include "search/results.hpp"
#include "src/core/fs.hpp"
#include "search/state.hpp"
#include "tests/test_util.hpp"

using namespace qnas;
using qnas::testing::expect_error;

TEST(SearchFiles, StateRoundTripsAndHostileStatesAreClearErrors) {
  search::SearchState s;
  s.iteration = 3;
  s.batch = {{0, 1, 2}, {1, 0, 0}};
  s.reference = search::Point{1.5, -2};
  s.fingerprint = "abc";
  const auto back = search::parse_state(search::state_json(s, "linas", 7, {1, 2}).dump(), "state.json");
  EXPECT_EQ(back.iteration, 3);
  EXPECT_EQ(back.batch, s.batch);
  EXPECT_EQ(*back.reference, *s.reference);
  EXPECT_EQ(back.fingerprint, "abc");

  const auto refused = [](const std::string& text, const std::vector<std::string>& fragments) {
    expect_error([&] { search::parse_state(text, "run/state.json"); }, fragments);
  };
  const std::string ok_tail = R"(, "fingerprint": "f", "batch": [], "reference_point": null})";
  refused("{", {"run/state.json", "not a JSON object"});
  refused("[1]", {"run/state.json", "not a JSON object"});
  refused(R"({"version": 2, "iteration": 0)" + ok_tail, {"state version 2", "expected 1"});
  refused(R"({"version": 1, "iteration": 1e20)" + ok_tail, {"iteration = 1e+20", "whole number"});
  refused(R"({"version": 1, "iteration": -1)" + ok_tail, {"iteration = -1"});
  refused(R"({"version": 1)" + ok_tail, {"no 'iteration'"});
  refused(R"({"version": 1, "iteration": 0, "fingerprint": 5, "batch": [], "reference_point": null})",
          {"fingerprint is a JSON number"});
  refused(R"({"version": 1, "iteration": 0, "fingerprint": "f", "batch": [[0, 2.5]], "reference_point": null})",
          {"batch[0] gene = 2.5"});
  refused(R"({"version": 1, "iteration": 0, "fingerprint": "f", "batch": {"a": 1}, "reference_point": null})",
          {"batch is a JSON object"});
  refused(R"({"version": 1, "iteration": 0, "fingerprint": "f", "batch": [], "reference_point": [1, "x"]})",
          {"reference_point holds \"x\""});
  refused(std::string(100000, '[') + std::string(100000, ']'), {"not a JSON object"});
}

TEST(SearchFiles, HostileCsvCellsAreClearErrors) {
  const auto header = core::csv_line(search::evaluation_header());
  std::vector<std::string> row(search::evaluation_header().size(), "");
  row[0] = "1e300";  // an id no int holds
  row[1] = "0";
  row[2] = "random";
  row[3] = "{}";
  row.back() = "0.1";
  const auto table = search::parse_csv(header + core::csv_line(row), "run/evaluations.csv");
  expect_error([&] { search::read_rows(table); }, {"run/evaluations.csv", "row 1", "column 'id'", "whole number"});
  row[0] = "2.5";
  expect_error([&] { search::read_rows(search::parse_csv(header + core::csv_line(row), "e.csv")); }, {"'id' is 2.5"});
  expect_error([&] { search::first_cell_integer({"x7"}, "run/hypervolume.csv"); }, {"run/hypervolume.csv", "'x7'"});
  expect_error([&] { search::first_cell_integer({}, "h.csv"); }, {"h.csv", "expected a number"});
  EXPECT_EQ(search::first_cell_integer({"12", "a"}, "h.csv"), 12);
  // A spec_json nested beyond reason: a clear error, no stack overflow.
  expect_error([&] { search::parse_row_spec(std::string(100000, '[') + std::string(100000, ']'), "row 1"); }, {"row 1"});
  expect_error([&] { search::parse_csv("a,b\n1,2", "p.csv"); }, {"p.csv", "last line is incomplete"});
  expect_error([&] { search::parse_csv("a,b\n1\n", "p.csv"); }, {"p.csv", "line 2 has 1 fields; expected 2"});
}

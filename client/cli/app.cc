#include "client/cli/app.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <tuple>

#include "client/cli/format.h"
#include "client/cli/progress.h"
#include "client/cli/series_growth.h"
#include "client/cli/submit.h"
#include "client/cli/token.h"
#include "client/csv.h"
#include "schema/category.h"
#include "schema/check.h"
#include "schema/limits.h"
#include "schema/rules.h"

#ifndef LOANLEDGER_VERSION
#define LOANLEDGER_VERSION "0.0.0-dev"
#endif

namespace loanledger::client::cli {
namespace {

constexpr std::string_view kEnvServer = "LOANLEDGER_SERVER";
constexpr std::string_view kEnvToken = "LOANLEDGER_TOKEN";
constexpr size_t kTokenNameBytesMax = 64;  // a label in the tokens file, not an essay

// ---- Flags ----------------------------------------------------------------

struct ConnectionFlags {
  std::string server;  // "" = $LOANLEDGER_SERVER, else kDefaultServer
  std::string token;   // "" = $LOANLEDGER_TOKEN
  bool tls = false;
  std::string tls_ca;         // implies tls
  bool tls_insecure = false;  // implies tls; verify nothing
};

struct Flags {
  ConnectionFlags connection;
  std::string file;                                 // submit
  size_t batch_size = kSubmitBatchEventsDefault;    // submit
  std::string date;                                 // report
  std::vector<std::string> categories;              // report, series
  std::string from, to, step = "month";             // series
  std::string by;                                   // report, series
  std::string format = "table";                     // report, series, loan
  std::string unit;                                 // report, series ("" = format's default)
  bool bom = false;                                 // report, series, loan (CSV)
  std::vector<std::string> measures;                // series (empty = balance,loans)
  std::string institution, loan_id;                 // loan
  std::string role, token_institution, token_name;  // token new
  std::string checkpoint_dir;                       // admin checkpoint
  std::string backup_dir;                           // admin backup
  uint32_t backup_keep = 0;                         // admin backup
  std::string gen_scale = "1/10000";                // gen
  uint64_t gen_seed = 1;                            // gen
  std::string gen_out = "-";                        // gen
  std::string gen_banks, gen_out_dir;               // gen ("" = not given)
  std::string gen_day, gen_before;                  // gen ("" = not given)
  std::string rules_file;                           // admin rules apply
};

struct Commands {
  CLI::App* submit;
  CLI::App* report;
  CLI::App* series;
  CLI::App* loan;
  CLI::App* token_new;
  CLI::App* gen;
  CLI::App* admin_verify;
  CLI::App* admin_stats;
  CLI::App* admin_compact;
  CLI::App* admin_checkpoint;
  CLI::App* admin_backup;
  CLI::App* admin_rules_show;
  CLI::App* admin_rules_apply;
};

// A category name as a rules file spells it (docs/categories.md): the
// server's rules decide which exist.
const CLI::Validator kCategoryName(
    [](std::string& name) {
      return IsRuleName(name) ? std::string()
                              : "bad category name " + name + " (A-Z 0-9 _, e.g. GREEN)";
    },
    "CATEGORY");

void AddConnectionOptions(CLI::App* cmd, ConnectionFlags& f) {
  cmd->add_option("--server", f.server,
                  "server address HOST:PORT, or a cluster's servers a:1,b:2,c:3 (default "
                  "$LOANLEDGER_SERVER, else 127.0.0.1:7700)");
  cmd->add_option("--token", f.token, "bearer token (default $LOANLEDGER_TOKEN)");
  cmd->add_flag("--tls", f.tls,
                "connect with TLS, verifying the server against the system CA store and its "
                "host name");
  cmd->add_option("--tls-ca", f.tls_ca,
                  "PEM CA file to verify the server against instead (implies --tls)");
  cmd->add_flag("--tls-insecure", f.tls_insecure,
                "TLS without verifying the server at all (tests only; implies --tls)")
      ->excludes(cmd->get_option("--tls-ca"));
}

void AddFormatOption(CLI::App* cmd, Flags& f) {
  cmd->add_option("--format", f.format, "output format: table, csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
  cmd->add_flag("--bom", f.bom,
                "CSV: write the UTF-8 byte order mark first, so that Excel reads the Chinese "
                "province names right (table and json: no effect)");
}

void AddUnitOption(CLI::App* cmd, Flags& f) {
  cmd->add_option("--unit", f.unit,
                  "amounts in table and CSV: fen, yuan, wan (10^4 yuan) or yi (10^8 yuan), exact "
                  "decimals (default: yuan in tables, fen in CSV; json is always fen)")
      ->check(CLI::IsMember({"fen", "yuan", "wan", "yi"}));
}

void AddQueryCommands(CLI::App& app, Flags& f, Commands& c) {
  c.report = app.add_subcommand("report",
                                "figures as of a date, per category (and province or institution)");
  AddConnectionOptions(c.report, f.connection);
  c.report->add_option("--date", f.date, "as of this date, YYYY-MM-DD")->required();
  c.report->add_option("--category", f.categories, "category (repeatable; default: all)")
      ->delimiter(',')
      ->check(kCategoryName);
  c.report->add_option("--by", f.by, "group rows by province, institution or region_group")
      ->check(CLI::IsMember({"province", "institution", "region_group"}));
  AddFormatOption(c.report, f);
  AddUnitOption(c.report, f);

  c.series = app.add_subcommand(
      "series", "balances (and loans, YoY, YTD) of categories at each period end from..to");
  AddConnectionOptions(c.series, f.connection);
  c.series
      ->add_option("--category", f.categories,
                   "category (repeatable or A,B: one table, CSV or JSON array for all)")
      ->required()
      ->delimiter(',')
      ->check(kCategoryName);
  c.series->add_option("--from", f.from, "first date, YYYY-MM-DD")->required();
  c.series->add_option("--to", f.to, "last date, YYYY-MM-DD (the last period is clipped to it)")
      ->required();
  c.series->add_option("--step", f.step, "period: day, month, quarter or year")
      ->check(CLI::IsMember({"day", "month", "quarter", "year"}))
      ->capture_default_str();
  c.series->add_option("--by", f.by, "one point per province, institution or region_group")
      ->check(CLI::IsMember({"province", "institution", "region_group"}));
  c.series
      ->add_option("--measures", f.measures,
                   "measures of each point, A,B: balance, loans, yoy (year-ago balance and "
                   "growth %), ytd (increase since Dec 31), or all (default: balance,loans)")
      ->delimiter(',')
      ->check(CLI::IsMember({"balance", "loans", "yoy", "ytd", "all"}));
  AddFormatOption(c.series, f);
  AddUnitOption(c.series, f);

  c.loan = app.add_subcommand("loan", "one loan: state, last seq, attributes, categories");
  AddConnectionOptions(c.loan, f.connection);
  c.loan->add_option("--institution", f.institution, "institution_id")->required();
  c.loan->add_option("--loan-id", f.loan_id, "loan_id")->required();
  AddFormatOption(c.loan, f);
}

void AddCommands(CLI::App& app, Flags& f, Commands& c) {
  c.submit = app.add_subcommand("submit", "submit loan events from a CSV file (docs/data.md form)");
  AddConnectionOptions(c.submit, f.connection);
  c.submit->add_option("file", f.file, "CSV file with the header line ('-' = stdin)")->required();
  c.submit->add_option("--batch-size", f.batch_size, "events per batch")
      ->check(CLI::Range(size_t{1}, kBatchEventsMax))
      ->capture_default_str();

  AddQueryCommands(app, f, c);

  CLI::App* token = app.add_subcommand("token", "bearer tokens");
  token->require_subcommand(1);
  c.token_new = token->add_subcommand(
      "new", "print a new token (line 1) and its tokens-file line (line 2); needs no server");
  c.token_new->add_option("--role", f.role, "institution, regulator or admin")
      ->required()
      ->check(CLI::IsMember({"institution", "regulator", "admin"}));
  c.token_new->add_option("--institution", f.token_institution,
                          "institution_id (role institution only)");
  c.token_new->add_option("--name", f.token_name, "a label for the tokens file (no spaces)");

  CLI::App* admin =
      app.add_subcommand("admin", "operator requests to the server (admin token, docs/cli.md)");
  admin->require_subcommand(1);
  c.admin_verify = admin->add_subcommand(
      "verify",
      "recompute every figure from the journal and compare (exit 0 if none differ, else 1)");
  c.admin_stats = admin->add_subcommand("stats", "the server's counters, 'key value' lines");
  c.admin_compact = admin->add_subcommand(
      "compact", "compact the server's RocksDB store now (minutes on a large store)");
  c.admin_checkpoint = admin->add_subcommand(
      "checkpoint",
      "write a checkpoint of the server's store to DIR on the server's machine; a new cluster "
      "replica starts from a copy of it (docs/cluster.md)");
  c.admin_checkpoint
      ->add_option("DIR", f.checkpoint_dir, "absolute path on the server's machine, not existing")
      ->required();
  c.admin_backup = admin->add_subcommand(
      "backup",
      "add an incremental backup of the server's store to DIR on the server's machine while it "
      "serves; loanledgerd --restore restores one (deploy/README.md, Backups)");
  c.admin_backup
      ->add_option("DIR", f.backup_dir,
                   "absolute path on the server's machine, outside its data directory: new, empty "
                   "or holding this store's backups")
      ->required();
  c.admin_backup
      ->add_option("--keep", f.backup_keep,
                   "afterwards delete all but the newest N backups in DIR (0: keep all)")
      ->capture_default_str();
  CLI::App* rules = admin->add_subcommand(
      "rules", "the server's category rules (docs/categories.md): show, or apply a new file");
  rules->require_subcommand(1);
  c.admin_rules_show = rules->add_subcommand(
      "show", "the current rules file, its version and every version applied");
  c.admin_rules_apply = rules->add_subcommand(
      "apply",
      "apply a rules file: the server recomputes every figure under it, then switches (a bad "
      "file is refused with the field and reason, exit 2)");
  c.admin_rules_apply->add_option("FILE", f.rules_file, "the rules file (JSON)")->required();
  for (CLI::App* cmd : {c.admin_verify, c.admin_stats, c.admin_compact, c.admin_checkpoint,
                        c.admin_backup, c.admin_rules_show, c.admin_rules_apply}) {
    AddConnectionOptions(cmd, f.connection);
  }

  c.gen = app.add_subcommand("gen",
                             "generate the synthetic national portfolio as CSV (docs/domain.md)");
  c.gen
      ->add_option("--scale", f.gen_scale, "share of the national portfolio, e.g. 1/10000 or 0.001")
      ->capture_default_str();
  c.gen->add_option("--seed", f.gen_seed, "random seed")->capture_default_str();
  c.gen->add_option("--out", f.gen_out, "output CSV file ('-' = stdout)")->capture_default_str();
  c.gen->add_option("--banks", f.gen_banks,
                    "lend through N banks of skewed sizes (1-9999; default: the model's 160)");
  c.gen->add_option("--out-dir", f.gen_out_dir,
                    "one CSV per institution, DIR/<institution>.csv (instead of --out)");
  c.gen->add_option("--day", f.gen_day, "only the events of this business day (YYYY-MM-DD)");
  c.gen->add_option("--before", f.gen_before, "only the events dated before this day (YYYY-MM-DD)");
}

// ---- Shared helpers -------------------------------------------------------

int Usage(CliContext& ctx, std::string_view command, std::string_view message) {
  ctx.err << "loanledger " << command << ": " << message
          << "\nRun with --help for more information.\n";
  return kExitUsage;
}

int Fail(CliContext& ctx, std::string_view command, const Status& status) {
  ctx.err << "loanledger " << command << ": " << status.ToString() << '\n';
  return ExitCodeFor(status);
}

// Fills options from the flags, then the environment, then the defaults.
// Returns an exit code on a usage error.
std::optional<int> ResolveConnection(const ConnectionFlags& f, std::string_view command,
                                     CliContext& ctx, ClientOptions& options) {
  std::string server = f.server;
  if (server.empty())
    server = ctx.getenv(std::string(kEnvServer)).value_or(std::string(kDefaultServer));
  if (!ParseServerList(server, options)) {
    return Usage(ctx, command,
                 "bad server address \"" + server + "\": expected HOST:PORT or a list a:1,b:2");
  }
  options.token = f.token;
  if (options.token.empty()) options.token = ctx.getenv(std::string(kEnvToken)).value_or("");
  if (options.token.empty())
    return Usage(ctx, command, "no token: pass --token or set LOANLEDGER_TOKEN");
  options.tls = f.tls || !f.tls_ca.empty() || f.tls_insecure;
  options.tls_ca_file = f.tls_ca;
  options.tls_insecure = f.tls_insecure;
  if (options.tls_insecure) {
    ctx.err << "loanledger " << command
            << ": warning: --tls-insecure: the server's certificate is not verified (anyone in "
               "between can read and change the traffic)\n";
  }
  options.client_name = "loanledger-cli";
  return std::nullopt;
}

std::optional<Day> ParseQueryDate(std::string_view text) {
  const std::optional<Day> day = ParseDate(text);
  if (!day || *day < kDayMin || *day > kDayMax) return std::nullopt;
  return day;
}

// --format, --unit, --bom (checked by CLI11).
OutputOptions OutputOptionsOf(const Flags& f) {
  OutputOptions options;
  options.format = *ParseOutputFormat(f.format);
  if (!f.unit.empty()) options.unit = *ParseAmountUnit(f.unit);
  options.bom = f.bom;
  return options;
}

std::string BadDate(std::string_view flag, std::string_view text) {
  return "bad " + std::string(flag) + " \"" + std::string(text) +
         "\": expected YYYY-MM-DD within 1990-01-01..2199-12-31";
}

// ---- submit ---------------------------------------------------------------

uint64_t FileBytes(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(size);
}

int SubmitStream(const Flags& f, std::istream& in, const ClientOptions& options, CliContext& ctx) {
  CsvReader reader(in);
  if (!reader.ReadHeader()) {
    const uint64_t line = std::max<uint64_t>(reader.line_number(), 1);
    ctx.err << FormatRejectionLine(f.file, line, Reason::kMalformedRecord, reader.error()) << '\n';
    ctx.out << FormatSubmitCounts({}) << '\n';
    return kExitRejected;
  }
  Result<std::unique_ptr<Client>> client = ctx.connect(options);
  if (!client.ok()) {
    const int code = Fail(ctx, "submit", client.status());
    ctx.out << FormatSubmitCounts({}) << '\n';
    return code;
  }
  Progress progress(ctx.err, ctx.err_is_terminal, f.file == "-" ? 0 : FileBytes(f.file), ctx.now);
  CsvSubmitter submitter(f.file, in, reader, f.batch_size, ctx.err, progress);
  const SubmitResult result = submitter.Run(**client);
  if (!result.status.ok()) Fail(ctx, "submit", result.status);
  ctx.out << FormatSubmitCounts(result.counts) << '\n';
  if (result.rejected) return kExitRejected;
  return result.status.ok() ? kExitOk : ExitCodeFor(result.status);
}

int RunSubmit(const Flags& f, CliContext& ctx) {
  ClientOptions options;
  if (auto code = ResolveConnection(f.connection, "submit", ctx, options)) return *code;
  if (f.file == "-") {
    if (ctx.in == nullptr) return Usage(ctx, "submit", "reading from stdin is not available here");
    return SubmitStream(f, *ctx.in, options, ctx);
  }
  std::ifstream file(f.file, std::ios::binary);
  if (!file) {
    return Usage(ctx, "submit", "cannot open " + f.file + ": " + std::strerror(errno));
  }
  return SubmitStream(f, file, options, ctx);
}

// ---- queries --------------------------------------------------------------

// The server's answer to a category its rules do not have: a usage error,
// as an unknown name was before rules files.
bool IsUnknownCategory(const Status& s) {
  return s.code() == Status::Code::kInvalidArgument &&
         s.message().rfind("unknown category", 0) == 0;
}

GroupBy GroupByFlag(const std::string& by) {
  return by.empty() ? GroupBy::kNone : ParseGroupBy(by).value_or(GroupBy::kNone);
}

int RunReport(const Flags& f, CliContext& ctx) {
  ReportQuery query;
  const std::optional<Day> date = ParseQueryDate(f.date);
  if (!date) return Usage(ctx, "report", BadDate("--date", f.date));
  query.date = *date;
  // By name: the server's rules decide (docs/categories.md). The default
  // rules' ids go along for a server that predates rules files.
  for (const std::string& name : f.categories) {
    if (std::find(query.category_names.begin(), query.category_names.end(), name) !=
        query.category_names.end())
      continue;
    query.category_names.push_back(name);
    if (const std::optional<Category> category = ParseCategory(name))
      query.categories.push_back(*category);
  }
  query.by = GroupByFlag(f.by);
  ClientOptions options;
  if (auto code = ResolveConnection(f.connection, "report", ctx, options)) return *code;
  Result<std::unique_ptr<Client>> client = ctx.connect(options);
  if (!client.ok()) return Fail(ctx, "report", client.status());
  Result<Report> report = (*client)->QueryReport(query);
  if (!report.ok() && IsUnknownCategory(report.status()))
    return Usage(ctx, "report", report.status().message());
  if (!report.ok()) return Fail(ctx, "report", report.status());
  report->date = query.date;  // the answer is for the date asked
  report->by = query.by;      // names the provinces when grouped by them (docs/categories.md)
  ctx.out << FormatReport(*report, OutputOptionsOf(f)) << std::flush;
  return kExitOk;
}

int RunSeries(const Flags& f, CliContext& ctx) {
  SeriesQuery query;
  const std::optional<Day> from = ParseQueryDate(f.from);
  if (!from) return Usage(ctx, "series", BadDate("--from", f.from));
  const std::optional<Day> to = ParseQueryDate(f.to);
  if (!to) return Usage(ctx, "series", BadDate("--to", f.to));
  if (*from > *to) return Usage(ctx, "series", "--from " + f.from + " is after --to " + f.to);
  query.from = *from;
  query.to = *to;
  query.step = *ParseStep(f.step);  // checked by CLI11
  query.by = GroupByFlag(f.by);
  if (SeriesDates(query.from, query.to, query.step).size() > kSeriesPointsMax) {
    return Usage(ctx, "series", "too many points: use a larger --step or a shorter range");
  }
  ClientOptions options;
  if (auto code = ResolveConnection(f.connection, "series", ctx, options)) return *code;
  Result<std::unique_ptr<Client>> client = ctx.connect(options);
  if (!client.ok()) return Fail(ctx, "series", client.status());
  const SeriesMeasures measures =
      f.measures.empty() ? kSeriesMeasuresDefault : *ParseSeriesMeasures(f.measures);
  std::vector<SeriesAnswer> answers;
  std::vector<std::string> asked;  // each category once, in the order given
  for (const std::string& name : f.categories) {
    if (std::find(asked.begin(), asked.end(), name) != asked.end()) continue;
    asked.push_back(name);
    query.category = ParseCategory(name).value_or(Category::kTotal);
    query.category_name = name;  // the server's rules decide (docs/categories.md)
    Result<SeriesAnswer> answer = QuerySeriesAnswer(
        query, measures, [&](const SeriesQuery& q) { return (*client)->QuerySeries(q); });
    if (!answer.ok() && IsUnknownCategory(answer.status()))
      return Usage(ctx, "series", answer.status().message());
    if (!answer.ok()) return Fail(ctx, "series", answer.status());
    answers.push_back(std::move(*answer));
  }
  ctx.out << FormatSeriesAnswers(answers, measures, OutputOptionsOf(f)) << std::flush;
  return kExitOk;
}

int RunLoan(const Flags& f, CliContext& ctx) {
  if (!IsValidInstitutionId(f.institution)) {
    return Usage(ctx, "loan", "bad --institution \"" + f.institution + "\": 1-32 of A-Z 0-9 _ -");
  }
  if (!IsValidLoanId(f.loan_id)) {
    return Usage(ctx, "loan", "bad --loan-id: 1-64 printable ASCII characters without comma");
  }
  ClientOptions options;
  if (auto code = ResolveConnection(f.connection, "loan", ctx, options)) return *code;
  Result<std::unique_ptr<Client>> client = ctx.connect(options);
  if (!client.ok()) return Fail(ctx, "loan", client.status());
  Result<LoanView> loan = (*client)->QueryLoan(f.institution, f.loan_id);
  if (!loan.ok()) return Fail(ctx, "loan", loan.status());
  ctx.out << FormatLoan(*loan, OutputOptionsOf(f)) << std::flush;
  return kExitOk;
}

// ---- admin ------------------------------------------------------------------

std::string FormatMs(int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

int RunAdminRules(const Flags& f, const Commands& c, CliContext& ctx) {
  const bool apply = c.admin_rules_apply->parsed();
  const std::string command = apply ? "admin rules apply" : "admin rules show";
  std::string text;
  if (apply) {
    std::ifstream in(f.rules_file, std::ios::binary);
    if (!in) return Usage(ctx, command, "cannot open " + f.rules_file);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    // Checked here first: a bad file never reaches the server.
    Result<std::shared_ptr<const Rules>> parsed = Rules::Parse(text);
    if (!parsed.ok()) {
      ctx.err << "loanledger " << command << ": " << f.rules_file << ": "
              << parsed.status().message() << '\n';
      return kExitRejected;
    }
  }
  ClientOptions options;
  if (auto code = ResolveConnection(f.connection, command, ctx, options)) return *code;
  Result<std::unique_ptr<Client>> client = ctx.connect(options);
  if (!client.ok()) return Fail(ctx, command, client.status());
  if (apply) {
    Result<RulesVersionView> v = (*client)->RulesApply(text);
    if (!v.ok()) return Fail(ctx, command, v.status());
    ctx.out << "rules apply: version=" << v->version << " number=" << v->number
            << " applied=" << FormatMs(v->applied_ms) << std::endl;
    return kExitOk;
  }
  Result<RulesShowOutcome> s = (*client)->RulesShow();
  if (!s.ok()) return Fail(ctx, command, s.status());
  // stdout is the current rules file, byte for byte (docs/categories.md), so
  // that `rules show > f.json` gives a file `rules apply` takes; its number,
  // the history and a running recompute go to stderr.
  ctx.err << "# rules version " << s->current.version << " (number " << s->current.number
          << ", applied " << FormatMs(s->current.applied_ms) << ")\n";
  for (const RulesVersionView& v : s->history) {
    ctx.err << "# history: number=" << v.number << " version=" << v.version
            << " applied=" << FormatMs(v.applied_ms) << '\n';
  }
  if (s->recompute_running) {
    ctx.err << "# recomputing under " << s->recompute_version << ": " << s->recompute_batches_done
            << " of " << s->recompute_batches_total << " journal batches\n";
  }
  ctx.err << std::flush;
  ctx.out << s->current.text << std::flush;
  return kExitOk;
}

int RunAdminBackup(const Flags& f, CliContext& ctx) {
  const std::string command = "admin backup";
  ClientOptions options;
  if (auto code = ResolveConnection(f.connection, command, ctx, options)) return *code;
  Result<std::unique_ptr<Client>> client = ctx.connect(options);
  if (!client.ok()) return Fail(ctx, command, client.status());
  Result<BackupOutcome> r = (*client)->Backup(f.backup_dir, f.backup_keep);
  if (!r.ok()) return Fail(ctx, command, r.status());
  ctx.out << "backup: dir=" << r->dir << " id=" << r->backup_id << " batches=" << r->batches
          << " stream_seq=" << r->stream_seq << " size_bytes=" << r->size_bytes
          << " new_bytes=" << r->new_bytes << " files=" << r->files
          << " backups_kept=" << r->backups_kept << std::endl;
  return kExitOk;
}

int RunAdmin(const Flags& f, const Commands& c, CliContext& ctx) {
  if (c.admin_rules_show->parsed() || c.admin_rules_apply->parsed())
    return RunAdminRules(f, c, ctx);
  if (c.admin_backup->parsed()) return RunAdminBackup(f, ctx);
  const std::string command = "admin " + std::string(c.admin_verify->parsed()       ? "verify"
                                                     : c.admin_stats->parsed()      ? "stats"
                                                     : c.admin_checkpoint->parsed() ? "checkpoint"
                                                                                    : "compact");
  ClientOptions options;
  if (auto code = ResolveConnection(f.connection, command, ctx, options)) return *code;
  Result<std::unique_ptr<Client>> client = ctx.connect(options);
  if (!client.ok()) return Fail(ctx, command, client.status());
  if (c.admin_verify->parsed()) {
    Result<VerifyOutcome> v = (*client)->Verify();
    if (!v.ok()) return Fail(ctx, command, v.status());
    for (const std::string& d : v->differences) ctx.out << "difference: " << d << '\n';
    ctx.out << "verify: batches_replayed=" << v->batches_replayed
            << " events_replayed=" << v->events_replayed << " loans_checked=" << v->loans_checked
            << " cells_checked=" << v->cells_checked << " differences=" << v->differences.size()
            << std::endl;
    return v->differences.empty() ? kExitOk : kExitUsage;  // as `loanledgerd --verify`
  }
  if (c.admin_checkpoint->parsed()) {
    Result<CheckpointOutcome> r = (*client)->Checkpoint(f.checkpoint_dir);
    if (!r.ok()) return Fail(ctx, command, r.status());
    ctx.out << "checkpoint: dir=" << r->dir << " stream_seq=" << r->stream_seq
            << " batches=" << r->batches << std::endl;
    return kExitOk;
  }
  if (c.admin_stats->parsed()) {
    Result<std::string> s = (*client)->Stats();
    if (!s.ok()) return Fail(ctx, command, s.status());
    ctx.out << *s << std::flush;
    return kExitOk;
  }
  Result<CompactOutcome> r = (*client)->Compact();
  if (!r.ok()) return Fail(ctx, command, r.status());
  ctx.out << "compact: duration_ms=" << r->duration_ms
          << " live_sst_bytes_before=" << r->live_sst_bytes_before
          << " live_sst_bytes_after=" << r->live_sst_bytes_after << std::endl;
  return kExitOk;
}

// ---- token new, gen ---------------------------------------------------------

bool IsValidTokenName(std::string_view name) {
  if (name.size() > kTokenNameBytesMax) return false;
  // '#' would start a comment in the tokens file and cut the line.
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return c > 0x20 && c < 0x7f && c != '#'; });
}

int RunTokenNew(const Flags& f, CliContext& ctx) {
  const TokenRole role = *ParseTokenRole(f.role);  // checked by CLI11
  if (role == TokenRole::kInstitution && !IsValidInstitutionId(f.token_institution)) {
    return Usage(ctx, "token new", "role institution needs --institution I (1-32 of A-Z 0-9 _ -)");
  }
  if (role != TokenRole::kInstitution && !f.token_institution.empty()) {
    return Usage(ctx, "token new", "--institution applies to role institution only");
  }
  if (!IsValidTokenName(f.token_name)) {
    return Usage(ctx, "token new",
                 "--name must be up to 64 printable characters without spaces or #");
  }
  Result<std::string> token = NewToken();
  if (!token.ok()) return Fail(ctx, "token new", token.status());
  ctx.out << *token << '\n'
          << TokensFileLine(*token, role, f.token_institution, f.token_name) << '\n';
  ctx.out.flush();
  ctx.err << "loanledger token new: give line 1 to the client; append line 2 to the server's "
             "tokens file\n";
  return kExitOk;
}

// "1/10000", "0.0001" or "1e-4"; positive and finite (the generator checks its own bounds).
std::optional<double> ParseScale(std::string_view text) {
  auto number = [](std::string_view s) -> std::optional<double> {
    double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
  };
  std::optional<double> scale;
  if (const size_t slash = text.find('/'); slash != std::string_view::npos) {
    const auto num = number(text.substr(0, slash));
    const auto den = number(text.substr(slash + 1));
    if (num && den && *den > 0) scale = *num / *den;
  } else {
    scale = number(text);
  }
  if (!scale || !(*scale > 0) || !std::isfinite(*scale)) return std::nullopt;
  return scale;
}

// --banks, --out-dir, --day, --before into args (issue 14's workloads).
int ParseGenWorkloadFlags(const Flags& f, CliContext& ctx, GenArgs& args) {
  if (!f.gen_banks.empty()) {
    uint32_t banks = 0;
    const auto [end, ec] =
        std::from_chars(f.gen_banks.data(), f.gen_banks.data() + f.gen_banks.size(), banks);
    if (ec != std::errc() || end != f.gen_banks.data() + f.gen_banks.size() || banks < 1 ||
        banks > kGenBanksMax) {
      return Usage(ctx, "gen",
                   "bad --banks \"" + f.gen_banks + "\": expected a number of banks, 1 to " +
                       std::to_string(kGenBanksMax));
    }
    args.banks = banks;
  }
  if (!f.gen_out_dir.empty() && f.gen_out != "-") {
    return Usage(ctx, "gen", "give --out or --out-dir, not both");
  }
  args.out_dir = f.gen_out_dir;
  if (!f.gen_day.empty() && !f.gen_before.empty()) {
    return Usage(ctx, "gen", "give --day or --before, not both");
  }
  for (const auto& [flag, text, into] : {std::tuple{"--day", &f.gen_day, &args.day},
                                         std::tuple{"--before", &f.gen_before, &args.before}}) {
    if (text->empty()) continue;
    *into = ParseDate(*text);
    if (!*into) {
      return Usage(ctx, "gen",
                   std::string("bad ") + flag + " \"" + *text + "\": expected YYYY-MM-DD");
    }
  }
  return kExitOk;
}

int RunGen(const Flags& f, CliContext& ctx) {
  const std::optional<double> scale = ParseScale(f.gen_scale);
  if (!scale)
    return Usage(ctx, "gen",
                 "bad --scale \"" + f.gen_scale + "\": expected a positive share, e.g. 1/10000");
  if (!ctx.gen) {
    return Usage(ctx, "gen",
                 "the portfolio generator (client/gen) is not built into this binary yet");
  }
  GenArgs args{*scale, f.gen_seed, f.gen_out};
  if (const int code = ParseGenWorkloadFlags(f, ctx, args); code != kExitOk) return code;
  return ctx.gen(args, ctx);
}

int Dispatch(const Commands& c, const Flags& f, CliContext& ctx) {
  if (c.submit->parsed()) return RunSubmit(f, ctx);
  if (c.report->parsed()) return RunReport(f, ctx);
  if (c.series->parsed()) return RunSeries(f, ctx);
  if (c.loan->parsed()) return RunLoan(f, ctx);
  if (c.token_new->parsed()) return RunTokenNew(f, ctx);
  if (c.gen->parsed()) return RunGen(f, ctx);
  if (c.admin_verify->parsed() || c.admin_stats->parsed() || c.admin_compact->parsed() ||
      c.admin_checkpoint->parsed() || c.admin_backup->parsed() || c.admin_rules_show->parsed() ||
      c.admin_rules_apply->parsed()) {
    return RunAdmin(f, c, ctx);
  }
  LL_CHECK_MSG(false, "a parsed command line without a command");
  return kExitUsage;
}

}  // namespace

int ExitCodeFor(const Status& status) {
  LL_CHECK(!status.ok());
  switch (status.code()) {
    case Status::Code::kInvalidArgument:
      return kExitUsage;
    case Status::Code::kPermissionDenied:
      return kExitRejected;
    case Status::Code::kNotFound:
      return kExitNotFound;
    case Status::Code::kUnavailable:
    case Status::Code::kUnauthenticated:
    case Status::Code::kNotLeader:  // the client follows the leader; this is left when none answers
      return kExitUnavailable;
    // The server could not answer (storage trouble, a bound, a bug): like an
    // outage to the caller — nothing was produced; retry or call the operator.
    case Status::Code::kIoError:
    case Status::Code::kCorruption:
    case Status::Code::kResourceExhausted:
    case Status::Code::kInternal:
    case Status::Code::kOk:
      return kExitUnavailable;
  }
  return kExitUnavailable;
}

bool ParseServerAddress(std::string_view text, ClientOptions& options) {
  // client/endpoint.h over schema/host_port.h: the server's parser too.
  const std::optional<Endpoint> e = ParseEndpoint(text);
  if (!e) return false;
  options.host = e->host;
  options.port = e->port;
  return true;
}

bool ParseServerList(std::string_view text, ClientOptions& options) {
  const std::optional<std::vector<Endpoint>> list = ParseEndpointList(text);
  if (!list) return false;
  options.host = list->front().host;
  options.port = list->front().port;
  options.servers.clear();
  if (list->size() > 1) {
    for (const Endpoint& e : *list) options.servers.push_back(FormatEndpoint(e));
  }
  return true;
}

int RunCli(const std::vector<std::string>& args, CliContext& ctx) {
  CLI::App app{"loanledger: submit loan events and query regulatory loan statistics", "loanledger"};
  app.set_version_flag("--version", std::string("loanledger ") + LOANLEDGER_VERSION,
                       "Print the version (as the server's loanledger_build_info) and exit");
  app.require_subcommand(1);
  app.fallthrough();  // lets `token new` and `gen` accept (and ignore) --server/--token
  Flags flags;
  AddConnectionOptions(&app, flags.connection);
  Commands commands{};
  AddCommands(app, flags, commands);
  try {
    app.parse(std::vector<std::string>(args.rbegin(), args.rend()));  // CLI11 wants them reversed
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, ctx.out, ctx.err);
    return code == 0 ? kExitOk : kExitUsage;
  }
  return Dispatch(commands, flags, ctx);
}

}  // namespace loanledger::client::cli

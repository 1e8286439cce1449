-- loanledger's ledger in PostgreSQL 15, for bench/compare_postgres.sh: the
-- same durable state as loanledgerd (docs/data.md: loan states, a journal of every
-- applied batch, category x province x institution x date aggregates) and the
-- same rules (docs/data.md: validation, exactly-once and atomic batches; docs/categories.md:
-- categories), done set-based, one transaction per batch.
--
-- Every table here is logged (durable); only the per-session staging tables
-- (apply_batch.sql) are TEMP. Text columns compare bytewise: the cluster is
-- created with --no-locale (C collation), as loanledgerd compares bytes.

-- The enumerations of docs/data.md. An unknown value fails the COPY, so a batch with one
-- is rejected whole, like loanledgerd's BAD_EVENT_KIND & co.
CREATE TYPE event_kind AS ENUM ('DISBURSE', 'REPAY', 'WRITE_OFF', 'RECLASSIFY');
CREATE TYPE borrower_type AS ENUM ('ENTERPRISE', 'INDIVIDUAL_BUSINESS', 'SMALL_MICRO_OWNER', 'INDIVIDUAL');
CREATE TYPE enterprise_size AS ENUM ('NA', 'LARGE', 'MEDIUM', 'SMALL', 'MICRO');

-- sum() of bigint returns numeric (an allocated state per group); money here
-- is int64 fen throughout, so sum in bigint, an overflow being an error.
CREATE AGGREGATE sum8(bigint) (SFUNC = int8pl, STYPE = bigint, COMBINEFUNC = int8pl, PARALLEL = SAFE);

-- The categories of docs/categories.md, in report order. id = the bit in a loan's category mask
-- (the same numbering as schema/category.h).
CREATE TABLE category (
  id   smallint PRIMARY KEY,
  bit  integer NOT NULL,
  name text NOT NULL UNIQUE
);
INSERT INTO category (id, bit, name)
SELECT id, 1 << id, name
FROM unnest(ARRAY['TOTAL', 'MANUFACTURING', 'MANUFACTURING_MLT', 'HIGH_TECH_MANUFACTURING', 'SRDI',
                  'INCLUSIVE_SMALL_MICRO', 'GREEN', 'TECH_ENTERPRISE', 'TECH_FINANCE', 'ELDERLY_CARE',
                  'DIGITAL_ECONOMY']) WITH ORDINALITY AS t(name, n),
     LATERAL (SELECT (n - 1)::smallint AS id) i;

-- The high-tech table of docs/categories.md, as data: a code is high-tech
-- when one of these is a prefix of it ("C39" alone does not match "C392").
CREATE TABLE high_tech_prefix (prefix text PRIMARY KEY);
INSERT INTO high_tech_prefix VALUES
  ('C27'), ('C374'), ('C4343'), ('C3562'), ('C3563'), ('C3569'), ('C3832'), ('C3833'), ('C3841'),
  ('C392'), ('C393'), ('C394'), ('C395'), ('C3961'), ('C3962'), ('C3963'), ('C3969'), ('C397'),
  ('C398'), ('C3990'), ('C391'), ('C3474'), ('C3475'), ('C3581'), ('C3582'), ('C3583'), ('C3584'),
  ('C3585'), ('C3586'), ('C3589'), ('C401'), ('C402'), ('C4040'), ('C4090'), ('C2664'), ('C2665');

-- The 31 province codes of docs/categories.md.
CREATE TABLE province (code smallint PRIMARY KEY);
INSERT INTO province
SELECT unnest(ARRAY[11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41,
                    42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65]);

-- docs/categories.md as one pure expression: the category mask of a loan's attributes.
-- high_tech is passed in (the callers look the code up in high_tech_prefix).
-- A plain expression, each argument that may be costly used once: the
-- planner inlines it into set-based statements instead of calling it per row.
CREATE FUNCTION ll_category_mask(bt borrower_type, sz enterprise_size, industry text, term integer,
                                 credit_line bigint, srdi boolean, tech boolean, green boolean,
                                 elderly boolean, digital boolean, high_tech boolean)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT 1                                                                      -- TOTAL
       | CASE WHEN left(industry, 1) = 'C'                                      -- MANUFACTURING: section C,
                   AND (length(industry) = 1                                    -- divisions 13-43
                        OR substr(industry, 2, 2) BETWEEN '13' AND '43') THEN 2 ELSE 0 END
       | CASE WHEN left(industry, 1) = 'C' AND term > 12                        -- MANUFACTURING_MLT
                   AND (length(industry) = 1
                        OR substr(industry, 2, 2) BETWEEN '13' AND '43') THEN 4 ELSE 0 END
       | CASE WHEN high_tech THEN 8 | 256 ELSE 0 END                            -- HIGH_TECH_MANUFACTURING
       | CASE WHEN srdi THEN 16 ELSE 0 END                                      -- SRDI
       | CASE WHEN credit_line <= 1000000000                                    -- INCLUSIVE_SMALL_MICRO
                   AND (bt IN ('INDIVIDUAL_BUSINESS', 'SMALL_MICRO_OWNER')
                        OR (bt = 'ENTERPRISE' AND sz IN ('SMALL', 'MICRO'))) THEN 32 ELSE 0 END
       | CASE WHEN green THEN 64 ELSE 0 END                                     -- GREEN
       | CASE WHEN tech THEN 128 ELSE 0 END                                     -- TECH_ENTERPRISE
       | CASE WHEN tech OR srdi THEN 256 ELSE 0 END                             -- TECH_FINANCE (and high-tech)
       | CASE WHEN elderly THEN 512 ELSE 0 END                                  -- ELDERLY_CARE
       | CASE WHEN digital THEN 1024 ELSE 0 END                                 -- DIGITAL_ECONOMY
$$;

-- HIGH_TECH_MANUFACTURING membership of an industry code: one of its prefixes
-- (1 to 5 characters: a code is a section letter and at most 4 digits) is in
-- the table. Used inline (see the views below) as uncorrelated IN (SELECT ...)
-- so that PostgreSQL hashes the table once per statement.
-- (A SQL function holding a sub-select is not inlined, hence the views.)

-- ---------------------------------------------------------------------------
-- Durable state.

-- One row per loan: its state after its last applied event (docs/data.md) and, as
-- loanledgerd keeps in memory, its category mask and province.
-- fillfactor leaves room for HOT updates: a loan's new version stays on its
-- page and the primary key is not touched.
CREATE TABLE loan (
  institution_id  text NOT NULL,
  loan_id         text NOT NULL,
  last_seq        bigint NOT NULL,
  last_date       date NOT NULL,
  balance_fen     bigint NOT NULL,
  mask            integer NOT NULL,
  province        smallint NOT NULL,
  borrower_type   borrower_type NOT NULL,
  enterprise_size enterprise_size NOT NULL,
  industry_code   text NOT NULL,
  region_code     text NOT NULL,
  term_months     smallint NOT NULL,
  credit_line_fen bigint NOT NULL,
  srdi            boolean NOT NULL,
  tech_enterprise boolean NOT NULL,
  green           boolean NOT NULL,
  elderly_care    boolean NOT NULL,
  digital_economy boolean NOT NULL,
  PRIMARY KEY (institution_id, loan_id)
) WITH (fillfactor = 70);

-- The journal (docs/data.md): one row per applied batch (who, when, how many) and
-- the batch's applied events (duplicates are counted, not kept), so that
-- state and aggregates can be rebuilt and audited by replaying them in
-- (batch_no, ord) order. Append-only, no index beyond the batch number.
CREATE TABLE batch (
  batch_no        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  institution_id  text NOT NULL,
  received_at     timestamptz NOT NULL DEFAULT now(),
  events          integer NOT NULL,
  applied         integer NOT NULL,
  duplicates      integer NOT NULL
);
CREATE TABLE journal_event (
  batch_no        bigint NOT NULL,
  ord             integer NOT NULL,  -- position in the batch
  institution_id  text NOT NULL,
  loan_id         text NOT NULL,
  seq             bigint NOT NULL,
  business_date   date NOT NULL,
  event           event_kind NOT NULL,
  amount_fen      bigint NOT NULL,
  borrower_type   borrower_type NOT NULL,
  enterprise_size enterprise_size NOT NULL,
  industry_code   text NOT NULL,
  region_code     text NOT NULL,
  term_months     smallint NOT NULL,
  credit_line_fen bigint NOT NULL,
  srdi            boolean NOT NULL,
  tech_enterprise boolean NOT NULL,
  green           boolean NOT NULL,
  elderly_care    boolean NOT NULL,
  digital_economy boolean NOT NULL
);

-- Institutions get a small integer id on their first batch, as in
-- loanledgerd: aggregate keys stay short and compare as integers.
CREATE TABLE institution (
  id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL UNIQUE
);

-- The aggregates (docs/figures.md): per category x province x institution x business
-- date, the day's change of the five measures. As of D = sum over day <= D.
CREATE TABLE cell_daily (
  category        smallint NOT NULL,
  province        smallint NOT NULL,
  institution     integer NOT NULL,  -- institution.id
  day             date NOT NULL,
  balance_fen     bigint NOT NULL,
  loan_count      bigint NOT NULL,   -- loans with a balance > 0
  disbursed_fen   bigint NOT NULL,
  repaid_fen      bigint NOT NULL,
  written_off_fen bigint NOT NULL,
  -- institution first: a batch (one institution's) probes and inserts
  -- within its own range of the index
  PRIMARY KEY (institution, category, province, day)
) WITH (fillfactor = 90);

-- The journal's events with the category mask and province of each event's
-- own attributes: what the raw-events report variant groups over.
CREATE VIEW journal_classified AS
SELECT j.*,
       ll_category_mask(j.borrower_type, j.enterprise_size, j.industry_code, j.term_months, j.credit_line_fen,
                        j.srdi, j.tech_enterprise, j.green, j.elderly_care, j.digital_economy,
                        left(j.industry_code, 1) IN (SELECT prefix FROM high_tech_prefix)
                        OR left(j.industry_code, 2) IN (SELECT prefix FROM high_tech_prefix)
                        OR left(j.industry_code, 3) IN (SELECT prefix FROM high_tech_prefix)
                        OR left(j.industry_code, 4) IN (SELECT prefix FROM high_tech_prefix)
                        OR left(j.industry_code, 5) IN (SELECT prefix FROM high_tech_prefix)) AS mask,
       left(j.region_code, 2)::smallint AS province
FROM journal_event j;

-- Statistics for the small reference tables (autovacuum never gets to them).
ANALYZE category, high_tech_prefix, province;

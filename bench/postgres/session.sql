-- Per-session staging for bench/compare_postgres.sh: run once at the start of
-- each loading session (psql), before any batch. TEMP tables are not
-- WAL-logged and live in the session's local buffers; both are emptied at
-- each commit (one batch = one transaction). Durable state is in schema.sql.

-- The batch as received (COPY target). The types (enums, date, integers)
-- and CHECKs are the field rules of docs/data.md (loanledgerd's ValidateEvent): a bad
-- field fails the COPY and so rejects the batch whole. Character classes
-- are checked by searching for a character outside the class (`!~ '[^...]'`):
-- an anchored pattern with a counted repetition costs ten times more.
-- institution_id is checked by ll_apply_batch (it must be the caller's).
-- ord keeps the position in the batch.
CREATE TEMP TABLE stage (
  institution_id  text NOT NULL,
  loan_id         text NOT NULL CHECK (octet_length(loan_id) BETWEEN 1 AND 64
                                       AND loan_id !~ '[^ -+\--~]'),  -- printable ASCII but ','
  seq             bigint NOT NULL CHECK (seq >= 1),
  business_date   date NOT NULL CHECK (business_date BETWEEN '1990-01-01' AND '2199-12-31'),
  event           event_kind NOT NULL,
  amount_fen      bigint NOT NULL,
  borrower_type   borrower_type NOT NULL,
  enterprise_size enterprise_size NOT NULL,
  industry_code   text NOT NULL,
  region_code     text NOT NULL CHECK (octet_length(region_code) = 6 AND region_code !~ '[^0-9]'
                                       AND left(region_code, 2) IN (
                    '11', '12', '13', '14', '15', '21', '22', '23', '31', '32', '33', '34', '35', '36', '37', '41',
                    '42', '43', '44', '45', '46', '50', '51', '52', '53', '54', '61', '62', '63', '64', '65')),
  term_months     integer NOT NULL CHECK (term_months BETWEEN 1 AND 600),
  credit_line_fen bigint NOT NULL CHECK (credit_line_fen >= 0),
  srdi            boolean NOT NULL,
  tech_enterprise boolean NOT NULL,
  green           boolean NOT NULL,
  elderly_care    boolean NOT NULL,
  digital_economy boolean NOT NULL,
  ord             integer GENERATED ALWAYS AS IDENTITY,
  CHECK (CASE WHEN event = 'RECLASSIFY' THEN amount_fen = 0
              ELSE amount_fen BETWEEN 1 AND 1000000000000000 END),
  CHECK ((borrower_type = 'ENTERPRISE') = (enterprise_size <> 'NA')),
  CHECK ((borrower_type = 'INDIVIDUAL' AND industry_code = '')
         OR (left(industry_code, 1) BETWEEN 'A' AND 'T' AND length(industry_code) IN (1, 3, 4, 5)
             AND substr(industry_code, 2) !~ '[^0-9]'))
) ON COMMIT DELETE ROWS;

-- The batch's applied events (duplicates left out) in per-loan seq order,
-- each with the loan's state before and after it: what validation, the
-- journal, the loan upsert and the aggregate deltas are computed from.
CREATE TEMP TABLE ev (
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
  term_months     integer NOT NULL,
  credit_line_fen bigint NOT NULL,
  srdi            boolean NOT NULL,
  tech_enterprise boolean NOT NULL,
  green           boolean NOT NULL,
  elderly_care    boolean NOT NULL,
  digital_economy boolean NOT NULL,
  ord             integer NOT NULL,
  mask            integer NOT NULL,   -- categories of this event's attributes
  province        smallint NOT NULL,
  known_seq       bigint,             -- the loan's last applied seq before the batch (NULL: new loan)
  rn              bigint NOT NULL,    -- 1 for the loan's first applied event in the batch
  existed         boolean NOT NULL,   -- the loan existed before this event
  prev_date       date,               -- the loan's business date before this event
  prev_mask       integer,
  prev_province   smallint,
  balance_before  bigint NOT NULL,
  balance_after   bigint NOT NULL,
  is_last         boolean NOT NULL    -- the loan's last event in the batch
) ON COMMIT DELETE ROWS;

-- The events of `stage` with their own category mask and province.
CREATE TEMP VIEW stage_classified AS
SELECT s.*,
       ll_category_mask(s.borrower_type, s.enterprise_size, s.industry_code, s.term_months, s.credit_line_fen,
                        s.srdi, s.tech_enterprise, s.green, s.elderly_care, s.digital_economy,
                        left(s.industry_code, 1) IN (SELECT prefix FROM high_tech_prefix)
                        OR left(s.industry_code, 2) IN (SELECT prefix FROM high_tech_prefix)
                        OR left(s.industry_code, 3) IN (SELECT prefix FROM high_tech_prefix)
                        OR left(s.industry_code, 4) IN (SELECT prefix FROM high_tech_prefix)
                        OR left(s.industry_code, 5) IN (SELECT prefix FROM high_tech_prefix)) AS mask,
       left(s.region_code, 2)::smallint AS province
FROM stage s;

-- The batch's changes per category x province x date, and the cell each one
-- goes to when that cell exists already (its tuple id; NULL: a new cell).
CREATE TEMP TABLE delta (
  category        smallint NOT NULL,
  province        smallint NOT NULL,
  day             date NOT NULL,
  balance_fen     bigint NOT NULL,
  loan_count      bigint NOT NULL,
  disbursed_fen   bigint NOT NULL,
  repaid_fen      bigint NOT NULL,
  written_off_fen bigint NOT NULL,
  cell            tid
) ON COMMIT DELETE ROWS;

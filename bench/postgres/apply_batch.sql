-- ll_apply_batch: applies the batch COPYed into the session's `stage` table
-- (session.sql) as loanledgerd applies one (docs/data.md), set-based, inside the
-- caller's transaction:
--   BEGIN; \copy stage (...) FROM batch.csv; SELECT * FROM ll_apply_batch('B0001'); COMMIT;
-- so the batch is atomic and acknowledged once its commit is flushed
-- (synchronous_commit = on). Any invalid event raises: the transaction, and
-- so the whole batch, is rolled back.
--
-- Steps: (1) join the batch to the stored loan states, drop duplicates
-- (seq <= last applied, or the same seq twice in the batch), and order each
-- loan's events by seq with window functions: running balance, previous
-- attributes; (2) validate set-based: caller's institution, seq continuity,
-- first event DISBURSE, dates not going back, no overdraw, balance cap;
-- (3) append the journal (a batch row and its applied events); (4) upsert the
-- loan states (last event per loan); (5) upsert the category x province x
-- institution x date deltas. Categories follow docs/categories.md: membership by the
-- loan's latest attributes; when an event changes them, the old cells lose
-- the whole balance and the new ones gain it on that event's date, with the
-- event's flow under the new attributes (storage/ledger_impl.h EmitDeltas).
CREATE FUNCTION ll_apply_batch(p_institution text,
                               OUT batch_no bigint, OUT applied integer, OUT duplicates integer)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
  v_received  integer;
  v_bad       text;
  v_inst      integer;
  v_hashjoin  text := current_setting('enable_hashjoin');   -- restored after the cell UPDATE
  v_mergejoin text := current_setting('enable_mergejoin');
BEGIN
  SELECT count(*) INTO v_received FROM stage;
  IF v_received = 0 OR v_received > 65536 THEN
    RAISE EXCEPTION 'a batch holds 1..65536 events, got %', v_received;
  END IF;
  -- Batches of one institution are applied one at a time (their loans and
  -- cells are the institution's own: other institutions never wait).
  PERFORM pg_advisory_xact_lock(hashtext(p_institution));
  SELECT id INTO v_inst FROM institution WHERE name = p_institution;
  IF NOT FOUND THEN
    INSERT INTO institution (name) VALUES (p_institution) ON CONFLICT (name) DO NOTHING;
    SELECT id INTO v_inst FROM institution WHERE name = p_institution;
  END IF;

  -- (1) The applied events with the loan's state before and after each.
  -- Lookups in the durable tables (loan here, cell_daily below) are LATERAL
  -- subqueries fenced with OFFSET 0: one index probe per key, whatever the
  -- statistics say. (The planner plans with the last ANALYZE's statistics,
  -- which say that a new or growing institution has almost no loans or cells
  -- yet; left free it picks a hash join over a full scan of "all of this
  -- institution's rows", rows that grow batch after batch, and PL/pgSQL keeps
  -- that plan.) A batch names ~1,000 distinct loans in 10,000 events: each is
  -- looked up once.
  INSERT INTO ev
  WITH known AS (
    SELECT l.*
    FROM (SELECT DISTINCT s.loan_id FROM stage s) s
    CROSS JOIN LATERAL (
      SELECT l.loan_id, l.last_seq AS known_seq, l.last_date AS known_date, l.balance_fen AS known_balance,
             l.mask AS known_mask, l.province AS known_province
      FROM loan l
      WHERE l.institution_id = p_institution AND l.loan_id = s.loan_id
      OFFSET 0
    ) l
  ),
  joined AS (
    SELECT s.*, k.known_seq, k.known_date, k.known_balance, k.known_mask, k.known_province
    FROM stage_classified s
    LEFT JOIN known k ON k.loan_id = s.loan_id
  ),
  -- Windows per loan_id: a batch holds one institution's events (an event of
  -- another institution rejects it below).
  fresh AS (  -- not yet applied; a seq repeated within the batch is a duplicate too
    SELECT j.*, j.seq IS NOT DISTINCT FROM lag(j.seq) OVER w AS repeated
    FROM joined j
    WHERE j.known_seq IS NULL OR j.seq > j.known_seq
    WINDOW w AS (PARTITION BY j.loan_id ORDER BY j.seq, j.ord)
  ),
  steps AS (
    SELECT f.*,
           row_number() OVER w AS rn,
           coalesce(f.known_balance, 0)
             + sum8(CASE f.event WHEN 'DISBURSE' THEN f.amount_fen WHEN 'RECLASSIFY' THEN 0
                   ELSE -f.amount_fen END) OVER w AS balance_after,
           lag(f.business_date) OVER w AS lag_date,
           lag(f.mask) OVER w AS lag_mask,
           lag(f.province) OVER w AS lag_province,
           lead(f.seq) OVER w IS NULL AS is_last
    FROM fresh f
    WHERE NOT f.repeated
    WINDOW w AS (PARTITION BY f.loan_id ORDER BY f.seq, f.ord)
  )
  SELECT institution_id, loan_id, seq, business_date, event, amount_fen, borrower_type, enterprise_size,
         industry_code, region_code, term_months, credit_line_fen, srdi, tech_enterprise, green, elderly_care,
         digital_economy, ord, mask, province, known_seq, rn,
         rn > 1 OR known_seq IS NOT NULL,
         CASE WHEN rn > 1 THEN lag_date ELSE known_date END,
         CASE WHEN rn > 1 THEN lag_mask ELSE known_mask END,
         CASE WHEN rn > 1 THEN lag_province ELSE known_province END,
         balance_after - CASE event WHEN 'DISBURSE' THEN amount_fen WHEN 'RECLASSIFY' THEN 0
                         ELSE -amount_fen END,
         balance_after, is_last
  FROM steps;
  GET DIAGNOSTICS applied = ROW_COUNT;
  duplicates := v_received - applied;

  -- (2) Validation, set-based: the first few bad events, with their index in
  -- the batch (0-based, as loanledgerd reports them).
  SELECT string_agg(format('#%s %s', i, reason), '; ') INTO v_bad
  FROM (
    SELECT s.ord - (SELECT min(ord) FROM stage) AS i, 'WRONG_INSTITUTION' AS reason
    FROM stage s WHERE s.institution_id <> p_institution
    UNION ALL
    SELECT e.ord - (SELECT min(ord) FROM stage),
           CASE WHEN e.seq <> coalesce(e.known_seq, 0) + e.rn THEN 'SEQ_GAP'
                WHEN NOT e.existed AND e.event <> 'DISBURSE' THEN 'FIRST_EVENT_NOT_DISBURSE'
                WHEN e.business_date < e.prev_date THEN 'DATE_BEFORE_PREVIOUS'
                WHEN e.balance_after < 0 THEN 'OVERDRAW'
                ELSE 'BALANCE_LIMIT' END
    FROM ev e
    WHERE e.seq <> coalesce(e.known_seq, 0) + e.rn
       OR (NOT e.existed AND e.event <> 'DISBURSE')
       OR e.business_date < e.prev_date
       OR e.balance_after < 0
       OR e.balance_after > 10000000000000000
    ORDER BY 1
    LIMIT 10
  ) bad;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'batch rejected: %', v_bad;
  END IF;
  IF applied = 0 THEN  -- all duplicates: nothing changes, nothing is journaled
    RETURN;
  END IF;

  -- (3) The journal.
  INSERT INTO batch (institution_id, events, applied, duplicates)
  VALUES (p_institution, v_received, applied, duplicates)
  RETURNING batch.batch_no INTO batch_no;
  INSERT INTO journal_event
  SELECT ll_apply_batch.batch_no, e.ord - (SELECT min(ord) FROM stage), e.institution_id, e.loan_id, e.seq,
         e.business_date, e.event, e.amount_fen, e.borrower_type, e.enterprise_size, e.industry_code,
         e.region_code, e.term_months, e.credit_line_fen, e.srdi, e.tech_enterprise, e.green, e.elderly_care,
         e.digital_economy
  FROM ev e;

  -- (4) Loan states: each loan's last event of the batch.
  INSERT INTO loan AS l
  SELECT e.institution_id, e.loan_id, e.seq, e.business_date, e.balance_after, e.mask, e.province,
         e.borrower_type, e.enterprise_size, e.industry_code, e.region_code, e.term_months, e.credit_line_fen,
         e.srdi, e.tech_enterprise, e.green, e.elderly_care, e.digital_economy
  FROM ev e
  WHERE e.is_last
  ON CONFLICT (institution_id, loan_id) DO UPDATE SET
    last_seq = excluded.last_seq, last_date = excluded.last_date, balance_fen = excluded.balance_fen,
    mask = excluded.mask, province = excluded.province, borrower_type = excluded.borrower_type,
    enterprise_size = excluded.enterprise_size, industry_code = excluded.industry_code,
    region_code = excluded.region_code, term_months = excluded.term_months,
    credit_line_fen = excluded.credit_line_fen, srdi = excluded.srdi, tech_enterprise = excluded.tech_enterprise,
    green = excluded.green, elderly_care = excluded.elderly_care, digital_economy = excluded.digital_economy;

  -- (5) Aggregate deltas: each event's changes (see above) summed per
  -- category x province x date, each sum matched to its cell if that
  -- exists; then existing cells are updated in place and new ones inserted.
  -- (Safe without ON CONFLICT: the institution's cells are
  -- written only under its advisory lock, held to commit. Most cells of a
  -- batch are new, and INSERT ... ON CONFLICT's speculative insertion
  -- measured slower than this probe + UPDATE + INSERT.)
  INSERT INTO delta
  SELECT d.*, c.ctid
  FROM (
    SELECT x.category, x.province, x.day, sum8(x.balance_fen), sum8(x.loan_count), sum8(x.disbursed_fen),
           sum8(x.repaid_fen), sum8(x.written_off_fen)
    FROM (
      -- every event: its new cells gain the balance after it (less the
      -- balance before it when the cells did not change: the net change)
      -- and its own flow
      SELECT k.id AS category, e.province, e.business_date AS day,
             e.balance_after - CASE WHEN e.existed AND e.prev_mask = e.mask AND e.prev_province = e.province
                                    THEN e.balance_before ELSE 0 END AS balance_fen,
             (e.balance_after > 0)::integer
               - CASE WHEN e.existed AND e.prev_mask = e.mask AND e.prev_province = e.province
                      THEN (e.balance_before > 0)::integer ELSE 0 END AS loan_count,
             CASE WHEN e.event = 'DISBURSE' THEN e.amount_fen ELSE 0 END AS disbursed_fen,
             CASE WHEN e.event = 'REPAY' THEN e.amount_fen ELSE 0 END AS repaid_fen,
             CASE WHEN e.event = 'WRITE_OFF' THEN e.amount_fen ELSE 0 END AS written_off_fen
      FROM ev e
      JOIN category k ON e.mask & k.bit <> 0
      UNION ALL
      -- an event that moved the loan: its old cells lose the whole balance
      SELECT k.id, e.prev_province, e.business_date, -e.balance_before, -(e.balance_before > 0)::integer, 0, 0, 0
      FROM ev e
      JOIN category k ON e.prev_mask & k.bit <> 0
      WHERE e.existed AND (e.prev_mask <> e.mask OR e.prev_province <> e.province)
    ) x
    GROUP BY x.category, x.province, x.day
  ) d
  LEFT JOIN LATERAL (
    SELECT c.ctid FROM cell_daily c
    WHERE c.institution = v_inst AND c.category = d.category AND c.province = d.province AND c.day = d.day
    OFFSET 0
  ) c ON true;

  -- By tuple id, one TID fetch per existing cell (never a hash join over the
  -- whole table, whatever the statistics say).
  PERFORM set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
  UPDATE cell_daily c SET
    balance_fen = c.balance_fen + d.balance_fen,
    loan_count = c.loan_count + d.loan_count,
    disbursed_fen = c.disbursed_fen + d.disbursed_fen,
    repaid_fen = c.repaid_fen + d.repaid_fen,
    written_off_fen = c.written_off_fen + d.written_off_fen
  FROM delta d
  WHERE d.cell IS NOT NULL AND c.ctid = d.cell;
  PERFORM set_config('enable_hashjoin', v_hashjoin, true), set_config('enable_mergejoin', v_mergejoin, true);

  INSERT INTO cell_daily
  SELECT d.category, d.province, v_inst, d.day,
         d.balance_fen, d.loan_count, d.disbursed_fen, d.repaid_fen, d.written_off_fen
  FROM delta d
  WHERE d.cell IS NULL;
END;
$$;

-- The report of docs/figures.md in SQL, two ways, same columns as loanledgerd's JSON
-- report (client/cli/format.cc): one row per category in docs/categories.md order, or
-- per category and province (ascending) when by_province.
--   balance as of X = sum of the daily deltas dated <= X;
--   X = d, its year-ago date (Feb 29 -> Feb 28) and the previous Dec 31;
--   flows year-to-date = flows dated in (previous Dec 31, d].
-- Like loanledgerd, a category without data still has its (zero) row when
-- not grouped; grouped, only provinces with data are listed.

-- ll_report: from the maintained daily aggregate table (cell_daily). One
-- pass: each row falls in one of four periods, (.., year ago], (year ago,
-- Dec 31 before d], (Dec 31, d], after d (a year-ago date is never after
-- that Dec 31), and is summed per category (and province) and period; the
-- figures are sums of periods. Rows after d count for nothing but make their
-- province a group, as in loanledgerd (a group is listed when its series
-- has any change). An inlinable SQL function: the planner sees the constant
-- dates and may scan in parallel.
CREATE FUNCTION ll_report(d date, by_province boolean)
RETURNS TABLE (category text, grp text, balance_fen bigint, loan_count bigint, balance_year_ago_fen bigint,
               yoy_growth_pct double precision, ytd_increase_fen bigint, disbursed_ytd_fen bigint,
               repaid_ytd_fen bigint, written_off_ytd_fen bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  WITH periods AS (
    SELECT c.category AS cat, CASE WHEN by_province THEN c.province END AS prov,
           CASE WHEN c.day <= (d - interval '1 year')::date THEN 0
                WHEN c.day <= make_date(extract(year FROM d)::integer - 1, 12, 31) THEN 1
                WHEN c.day <= d THEN 2
                ELSE 3 END AS period,
           sum8(c.balance_fen) AS bal, sum8(c.loan_count) AS cnt, sum8(c.disbursed_fen) AS dis,
           sum8(c.repaid_fen) AS rep, sum8(c.written_off_fen) AS wo
    FROM cell_daily c
    GROUP BY 1, 2, 3
  ),
  agg AS (
    SELECT cat, prov,
           sum8(bal) FILTER (WHERE period <= 2) AS bal,
           sum8(cnt) FILTER (WHERE period <= 2) AS cnt,
           sum8(bal) FILTER (WHERE period = 0) AS bal_ya,
           sum8(bal) FILTER (WHERE period <= 1) AS bal_ye,
           sum8(dis) FILTER (WHERE period = 2) AS dis,
           sum8(rep) FILTER (WHERE period = 2) AS rep,
           sum8(wo) FILTER (WHERE period = 2) AS wo
    FROM periods
    GROUP BY 1, 2
  )
  SELECT k.name, lpad(a.prov::text, 2, '0'),
         coalesce(a.bal, 0)::bigint, coalesce(a.cnt, 0)::bigint, coalesce(a.bal_ya, 0)::bigint,
         CASE WHEN coalesce(a.bal_ya, 0) <> 0
              THEN (a.bal - a.bal_ya)::double precision / a.bal_ya::double precision * 100 END,
         (coalesce(a.bal, 0) - coalesce(a.bal_ye, 0))::bigint,
         coalesce(a.dis, 0)::bigint, coalesce(a.rep, 0)::bigint, coalesce(a.wo, 0)::bigint
  FROM category k
  LEFT JOIN agg a ON a.cat = k.id
  WHERE a.cat IS NOT NULL OR NOT by_province
  ORDER BY k.id, a.prov
$$;

-- ll_report_events: the same figures straight from the journal's events, no
-- aggregate table: each loan's running balance by seq, its state as of each
-- of the three dates (its last event dated <= the date: that event's
-- attributes decide the categories and province), and the year's flows by
-- each event's own attributes. Events after d only make their province a
-- group (as above).
CREATE FUNCTION ll_report_events(d date, by_province boolean)
RETURNS TABLE (category text, grp text, balance_fen bigint, loan_count bigint, balance_year_ago_fen bigint,
               yoy_growth_pct double precision, ytd_increase_fen bigint, disbursed_ytd_fen bigint,
               repaid_ytd_fen bigint, written_off_ytd_fen bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  WITH x AS (
    SELECT d, (d - interval '1 year')::date AS ya, make_date(extract(year FROM d)::integer - 1, 12, 31) AS ye
  ),
  e AS (
    SELECT j.mask, j.province, j.business_date, j.event, j.amount_fen,
           sum8(CASE j.event WHEN 'DISBURSE' THEN j.amount_fen WHEN 'RECLASSIFY' THEN 0 ELSE -j.amount_fen END)
             OVER w AS bal,
           coalesce(lead(j.business_date) OVER w, 'infinity') AS next_date
    FROM journal_classified j
    WINDOW w AS (PARTITION BY j.institution_id, j.loan_id ORDER BY j.seq)
  ),
  agg AS (
    SELECT k.id AS cat, CASE WHEN by_province THEN e.province END AS prov,
           sum8(e.bal) FILTER (WHERE e.business_date <= x.d AND e.next_date > x.d) AS bal,
           count(*) FILTER (WHERE e.business_date <= x.d AND e.next_date > x.d AND e.bal > 0) AS cnt,
           sum8(e.bal) FILTER (WHERE e.business_date <= x.ya AND e.next_date > x.ya) AS bal_ya,
           sum8(e.bal) FILTER (WHERE e.business_date <= x.ye AND e.next_date > x.ye) AS bal_ye,
           sum8(e.amount_fen) FILTER (WHERE e.event = 'DISBURSE' AND e.business_date > x.ye AND e.business_date <= x.d) AS dis,
           sum8(e.amount_fen) FILTER (WHERE e.event = 'REPAY' AND e.business_date > x.ye AND e.business_date <= x.d) AS rep,
           sum8(e.amount_fen) FILTER (WHERE e.event = 'WRITE_OFF' AND e.business_date > x.ye AND e.business_date <= x.d) AS wo
    FROM e CROSS JOIN x
    JOIN category k ON e.mask & k.bit <> 0
    GROUP BY 1, 2
  )
  SELECT k.name, lpad(a.prov::text, 2, '0'),
         coalesce(a.bal, 0)::bigint, coalesce(a.cnt, 0)::bigint, coalesce(a.bal_ya, 0)::bigint,
         CASE WHEN coalesce(a.bal_ya, 0) <> 0
              THEN (a.bal - a.bal_ya)::double precision / a.bal_ya::double precision * 100 END,
         (coalesce(a.bal, 0) - coalesce(a.bal_ye, 0))::bigint,
         coalesce(a.dis, 0)::bigint, coalesce(a.rep, 0)::bigint, coalesce(a.wo, 0)::bigint
  FROM category k
  LEFT JOIN agg a ON a.cat = k.id
  WHERE a.cat IS NOT NULL OR NOT by_province
  ORDER BY k.id, a.prov
$$;

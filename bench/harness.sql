-- The bench harness: every benchmark runs pg_collect and a baseline doing the same job in
-- the same session, interleaved run by run, and reports medians and ratios.
CREATE SCHEMA bench;
CREATE TABLE bench.results (
    id bigserial,
    benchmark text NOT NULL,
    variant text NOT NULL,
    is_baseline boolean NOT NULL,
    run int NOT NULL,
    value float8 NOT NULL,
    unit text NOT NULL,
    items bigint          -- entries (or rows) one run handles, for a per-second figure
);

-- Runs each variant `runs` times after one warm-up, alternating variants within each run so
-- drift (caches, autovacuum, the other core) hits all of them alike. The first is the baseline.
CREATE PROCEDURE bench.compare(benchmark text, items bigint, runs int, variants text[][])
LANGUAGE plpgsql AS $$
DECLARE
    r int;
    v int;
    started timestamptz;
BEGIN
    FOR v IN 1 .. array_length(variants, 1) LOOP
        EXECUTE variants[v][2];
    END LOOP;
    FOR r IN 1 .. runs LOOP
        FOR v IN 1 .. array_length(variants, 1) LOOP
            started := clock_timestamp();
            EXECUTE variants[v][2];
            INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit, items)
            VALUES (benchmark, variants[v][1], v = 1, r,
                extract(epoch FROM clock_timestamp() - started) * 1000, 'ms', items);
        END LOOP;
    END LOOP;
END $$;

-- A measured quantity that is not a time (a size in bytes, say).
CREATE PROCEDURE bench.record(benchmark text, variant text, is_baseline boolean, value float8, unit text)
LANGUAGE sql AS $$
    INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit)
    VALUES (benchmark, variant, is_baseline, 1, value, unit);
$$;

CREATE VIEW bench.report AS
WITH medians AS (
    SELECT benchmark, variant, bool_or(is_baseline) AS is_baseline, unit, max(items) AS items,
           count(*) AS runs, min(id) AS first_id,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY value) AS median
    FROM bench.results GROUP BY benchmark, variant, unit
)
SELECT m.benchmark, m.variant, m.is_baseline, m.runs, m.unit, m.median, m.items,
       m.median / nullif(b.median, 0) AS ratio_to_baseline,
       b.first_id AS ord
FROM medians m JOIN medians b ON b.benchmark = m.benchmark AND b.is_baseline;

-- WAL bytes one statement writes, each statement committed on its own (as appends are),
-- averaged over `statements` per run; `$1` in the SQL is the statement's number.
CREATE PROCEDURE bench.wal_per_statement(benchmark text, variant text, is_baseline boolean,
                                         sql text, statements int, runs int)
LANGUAGE plpgsql AS $$
DECLARE
    start_lsn pg_lsn;
BEGIN
    FOR r IN 1 .. runs LOOP
        start_lsn := pg_current_wal_insert_lsn();
        FOR i IN 1 .. statements LOOP
            EXECUTE sql USING i;
            COMMIT;
        END LOOP;
        INSERT INTO bench.results (benchmark, variant, is_baseline, run, value, unit)
        VALUES (benchmark, variant, is_baseline, r,
                pg_wal_lsn_diff(pg_current_wal_insert_lsn(), start_lsn) / statements, 'WAL bytes');
        COMMIT;
    END LOOP;
END $$;

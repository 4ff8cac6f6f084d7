-- pg_collect 0.6.0 -> 0.7.0: archive range reads parse only the records in range (issue #30).
-- collect.archived_range keeps its arguments, answers and errors; only how they are computed
-- changes, so nothing stored is touched.

CREATE OR REPLACE FUNCTION collect.archived_range(name text, since timestamptz, until timestamptz) RETURNS SETOF jsonb
    LANGUAGE c AS 'MODULE_PATHNAME', 'archived_range_wrapper';

-- Mergeable sketches: collect.hll, collect.quantiles, collect.topk (src/sketches/).
-- Every aggregate keeps the sketch type itself as its state (changed in place as an expanded
-- object, src/sketches/expanded.rs) with a combine function, so Postgres runs them in parallel
-- workers and Citus pushes them down to its workers as partial aggregates.

CREATE TYPE collect.hll;
CREATE FUNCTION collect.hll_in(cstring) RETURNS collect.hll
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'hll_in_wrapper';
CREATE FUNCTION collect.hll_out(collect.hll) RETURNS cstring
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'hll_out_wrapper';
CREATE FUNCTION collect.hll_recv(internal) RETURNS collect.hll
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'hll_recv_wrapper';
CREATE FUNCTION collect.hll_send(collect.hll) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'hll_send_wrapper';
CREATE TYPE collect.hll (
    INPUT = collect.hll_in, OUTPUT = collect.hll_out,
    RECEIVE = collect.hll_recv, SEND = collect.hll_send,
    INTERNALLENGTH = VARIABLE, STORAGE = extended
);
COMMENT ON TYPE collect.hll IS 'HyperLogLog distinct-count sketch: exact for small sets, about 0.8% standard error beyond';
CREATE FUNCTION collect.hll_eq(collect.hll, collect.hll) RETURNS boolean
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'hll_eq_wrapper';
CREATE OPERATOR collect.= (
    LEFTARG = collect.hll, RIGHTARG = collect.hll, FUNCTION = collect.hll_eq,
    COMMUTATOR = OPERATOR(collect.=)
);
CREATE FUNCTION collect.merge(collect.hll, collect.hll) RETURNS collect.hll
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'hll_union_wrapper';
COMMENT ON FUNCTION collect.merge(collect.hll, collect.hll) IS 'Both sketches merged into one';
CREATE FUNCTION collect._hll_merge_trans(collect.hll, collect.hll) RETURNS collect.hll
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'hll_merge_trans_wrapper';
CREATE AGGREGATE collect.merge(collect.hll) (
    SFUNC = collect._hll_merge_trans, STYPE = collect.hll,
    COMBINEFUNC = collect._hll_merge_trans, PARALLEL = SAFE
);
COMMENT ON AGGREGATE collect.merge(collect.hll) IS 'Merges hll sketches (re-aggregating rollup rows)';

CREATE TYPE collect.quantiles;
CREATE FUNCTION collect.quantiles_in(cstring) RETURNS collect.quantiles
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_in_wrapper';
CREATE FUNCTION collect.quantiles_out(collect.quantiles) RETURNS cstring
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_out_wrapper';
CREATE FUNCTION collect.quantiles_recv(internal) RETURNS collect.quantiles
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_recv_wrapper';
CREATE FUNCTION collect.quantiles_send(collect.quantiles) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_send_wrapper';
CREATE TYPE collect.quantiles (
    INPUT = collect.quantiles_in, OUTPUT = collect.quantiles_out,
    RECEIVE = collect.quantiles_recv, SEND = collect.quantiles_send,
    INTERNALLENGTH = VARIABLE, STORAGE = extended
);
COMMENT ON TYPE collect.quantiles IS 'Relative-error quantile sketch (DDSketch): any quantile within 1% of a true value of that rank';
CREATE FUNCTION collect.quantiles_eq(collect.quantiles, collect.quantiles) RETURNS boolean
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_eq_wrapper';
CREATE OPERATOR collect.= (
    LEFTARG = collect.quantiles, RIGHTARG = collect.quantiles, FUNCTION = collect.quantiles_eq,
    COMMUTATOR = OPERATOR(collect.=)
);
CREATE FUNCTION collect.merge(collect.quantiles, collect.quantiles) RETURNS collect.quantiles
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_union_wrapper';
COMMENT ON FUNCTION collect.merge(collect.quantiles, collect.quantiles) IS 'Both sketches merged into one';
CREATE FUNCTION collect._quantiles_merge_trans(collect.quantiles, collect.quantiles) RETURNS collect.quantiles
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_merge_trans_wrapper';
CREATE AGGREGATE collect.merge(collect.quantiles) (
    SFUNC = collect._quantiles_merge_trans, STYPE = collect.quantiles,
    COMBINEFUNC = collect._quantiles_merge_trans, PARALLEL = SAFE
);
COMMENT ON AGGREGATE collect.merge(collect.quantiles) IS 'Merges quantiles sketches (re-aggregating rollup rows)';

CREATE TYPE collect.topk;
CREATE FUNCTION collect.topk_in(cstring) RETURNS collect.topk
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'topk_in_wrapper';
CREATE FUNCTION collect.topk_out(collect.topk) RETURNS cstring
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'topk_out_wrapper';
CREATE FUNCTION collect.topk_recv(internal) RETURNS collect.topk
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'topk_recv_wrapper';
CREATE FUNCTION collect.topk_send(collect.topk) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'topk_send_wrapper';
CREATE TYPE collect.topk (
    INPUT = collect.topk_in, OUTPUT = collect.topk_out,
    RECEIVE = collect.topk_recv, SEND = collect.topk_send,
    INTERNALLENGTH = VARIABLE, STORAGE = extended
);
COMMENT ON TYPE collect.topk IS 'Heavy hitters (SpaceSaving): counts with error bounds';
CREATE FUNCTION collect.topk_eq(collect.topk, collect.topk) RETURNS boolean
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'topk_eq_wrapper';
CREATE OPERATOR collect.= (
    LEFTARG = collect.topk, RIGHTARG = collect.topk, FUNCTION = collect.topk_eq,
    COMMUTATOR = OPERATOR(collect.=)
);
CREATE FUNCTION collect.merge(collect.topk, collect.topk) RETURNS collect.topk
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'topk_union_wrapper';
COMMENT ON FUNCTION collect.merge(collect.topk, collect.topk) IS 'Both sketches merged into one';
CREATE FUNCTION collect._topk_merge_trans(collect.topk, collect.topk) RETURNS collect.topk
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'topk_merge_trans_wrapper';
CREATE AGGREGATE collect.merge(collect.topk) (
    SFUNC = collect._topk_merge_trans, STYPE = collect.topk,
    COMBINEFUNC = collect._topk_merge_trans, PARALLEL = SAFE
);
COMMENT ON AGGREGATE collect.merge(collect.topk) IS 'Merges topk sketches (re-aggregating rollup rows)';

-- One hll_agg per common type besides anyelement (Citus pushes an aggregate down only when its
-- declared argument type is the values' own), each with log2m (the precision: 2^log2m registers) or the default, 14.
DO $$
DECLARE
    value_type text;
BEGIN
    FOREACH value_type IN ARRAY ARRAY['anyelement', 'smallint', 'integer', 'bigint', 'text', 'uuid', 'numeric', 'date',
                                      'timestamp', 'timestamptz'] LOOP
        EXECUTE format($f$CREATE FUNCTION collect._hll_agg_trans(collect.hll, %1$s) RETURNS collect.hll
                          IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'hll_agg_trans_wrapper'$f$, value_type);
        EXECUTE format($f$CREATE FUNCTION collect._hll_agg_trans(collect.hll, %1$s, integer) RETURNS collect.hll
                          IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'hll_agg_trans_wrapper'$f$, value_type);
        -- SSPACE: a typical sparse state; without it the planner assumes 8 kB and spills hash aggregates early.
        EXECUTE format($f$CREATE AGGREGATE collect.hll_agg(%1$s) (
                          SFUNC = collect._hll_agg_trans, STYPE = collect.hll,
                          COMBINEFUNC = collect._hll_merge_trans, PARALLEL = SAFE, SSPACE = 1024)$f$, value_type);
        EXECUTE format($f$CREATE AGGREGATE collect.hll_agg(%1$s, log2m integer) (
                          SFUNC = collect._hll_agg_trans, STYPE = collect.hll,
                          COMBINEFUNC = collect._hll_merge_trans, PARALLEL = SAFE, SSPACE = 1024)$f$, value_type);
        EXECUTE format($f$COMMENT ON AGGREGATE collect.hll_agg(%1$s) IS 'A distinct-count sketch of the non-NULL values (log2m 14: 0.81%% standard error)'$f$, value_type);
        EXECUTE format($f$COMMENT ON AGGREGATE collect.hll_agg(%1$s, integer) IS 'A distinct-count sketch of the non-NULL values, of 2^log2m registers (log2m 4 to 18; standard error 1.04/sqrt(2^log2m))'$f$, value_type);
    END LOOP;
END $$;

CREATE FUNCTION collect._quantiles_agg_trans(collect.quantiles, float8) RETURNS collect.quantiles
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_agg_trans_wrapper';
CREATE AGGREGATE collect.quantiles_agg(float8) (
    SFUNC = collect._quantiles_agg_trans, STYPE = collect.quantiles,
    COMBINEFUNC = collect._quantiles_merge_trans, PARALLEL = SAFE,
    SSPACE = 512
);
COMMENT ON AGGREGATE collect.quantiles_agg(float8) IS 'A quantile sketch of the non-NULL values (NaN and infinities are errors)';

CREATE FUNCTION collect._topk_agg_trans(collect.topk, text, integer) RETURNS collect.topk
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'topk_agg_trans_wrapper';
CREATE AGGREGATE collect.topk_agg(text, k integer) (
    SFUNC = collect._topk_agg_trans, STYPE = collect.topk,
    COMBINEFUNC = collect._topk_merge_trans, PARALLEL = SAFE,
    SSPACE = 4096
);
COMMENT ON AGGREGATE collect.topk_agg(text, integer) IS 'A heavy-hitters sketch for the k most frequent non-NULL values';

-- The counts of a NULL sketch (what an aggregate over no rows gives) are 0, as count(*) is.
CREATE FUNCTION collect.distinct_count(sketch collect.hll) RETURNS bigint
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'hll_distinct_count_wrapper';
CREATE FUNCTION collect.quantile(sketch collect.quantiles, q float8) RETURNS float8
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_quantile_wrapper';
CREATE FUNCTION collect.quantiles(sketch collect.quantiles, qs float8[]) RETURNS float8[]
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_quantiles_wrapper';
CREATE FUNCTION collect.value_count(sketch collect.quantiles) RETURNS bigint
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'quantiles_count_wrapper';
CREATE FUNCTION collect.top(sketch collect.topk, n integer) RETURNS TABLE (value text, count bigint, error bigint)
    IMMUTABLE STRICT PARALLEL SAFE ROWS 10 LANGUAGE c AS 'MODULE_PATHNAME', 'topk_top_wrapper';

-- Functions of `internal` arguments are for Postgres (type I/O) to call, not SQL.
REVOKE EXECUTE ON FUNCTION
    collect.hll_recv(internal),
    collect.quantiles_recv(internal),
    collect.topk_recv(internal)
    FROM PUBLIC;

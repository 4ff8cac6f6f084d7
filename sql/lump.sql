-- collect.lump: an immutable, ordered lump of JSON entries, gzip-compressed behind a
-- small versioned header (see crates/core/src/lump/format.rs). The C functions are in src/lump/sql.rs.

CREATE TYPE collect.lump;

CREATE FUNCTION collect.lump_in(cstring) RETURNS collect.lump
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_in_wrapper';
CREATE FUNCTION collect.lump_out(collect.lump) RETURNS cstring
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_out_wrapper';
CREATE FUNCTION collect.lump_recv(internal) RETURNS collect.lump
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_recv_wrapper';
CREATE FUNCTION collect.lump_send(collect.lump) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_send_wrapper';

-- STORAGE = external: the payload is already gzipped, so TOAST must not try pglz on it, and
-- entry_count() can fetch only the header's slice of a large value.
CREATE TYPE collect.lump (
    INPUT = collect.lump_in,
    OUTPUT = collect.lump_out,
    RECEIVE = collect.lump_recv,
    SEND = collect.lump_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = external
);
COMMENT ON TYPE collect.lump IS
    'An ordered lump of JSON entries stored gzip-compressed; text form is a JSON array';

CREATE FUNCTION collect.lump(entries jsonb) RETURNS collect.lump
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_from_jsonb_wrapper';
COMMENT ON FUNCTION collect.lump(jsonb) IS
    'A lump of the elements of a JSON array, or of one entry if not an array';

CREATE FUNCTION collect.to_jsonb(c collect.lump) RETURNS jsonb
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_to_jsonb_wrapper';
COMMENT ON FUNCTION collect.to_jsonb(collect.lump) IS 'The entries as a JSON array';

CREATE FUNCTION collect.entries(c collect.lump) RETURNS SETOF jsonb
    IMMUTABLE STRICT PARALLEL SAFE ROWS 100 LANGUAGE c AS 'MODULE_PATHNAME', 'collection_entries_wrapper';
COMMENT ON FUNCTION collect.entries(collect.lump) IS 'One row per entry, in order';

CREATE FUNCTION collect.entry_count(c collect.lump) RETURNS bigint
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_entry_count_wrapper';
COMMENT ON FUNCTION collect.entry_count(collect.lump) IS
    'How many entries, read from the header without decompressing';

CREATE FUNCTION collect.lump_append(c collect.lump, entries jsonb) RETURNS collect.lump
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_append_wrapper';
COMMENT ON FUNCTION collect.lump_append(collect.lump, jsonb) IS
    'c with one entry appended, or each element of a JSON array; the existing compressed bytes are copied, not decompressed';

CREATE OPERATOR collect.|| (
    LEFTARG = collect.lump,
    RIGHTARG = jsonb,
    FUNCTION = collect.lump_append
);

CREATE FUNCTION collect.merge(a collect.lump, b collect.lump) RETURNS collect.lump
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_merge_wrapper';
COMMENT ON FUNCTION collect.merge(collect.lump, collect.lump) IS
    'a''s entries, then b''s, without decompressing either';

CREATE CAST (collect.lump AS jsonb) WITH FUNCTION collect.to_jsonb(collect.lump);
CREATE CAST (jsonb AS collect.lump) WITH FUNCTION collect.lump(jsonb);

-- lump_agg(jsonb): parallel safe, with partial states combined across workers.
CREATE FUNCTION collect._lump_agg_trans(internal, jsonb) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_agg_trans_wrapper';
CREATE FUNCTION collect._lump_agg_combine(internal, internal) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_agg_combine_wrapper';
CREATE FUNCTION collect._lump_agg_serialize(internal) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_agg_serialize_wrapper';
CREATE FUNCTION collect._lump_agg_deserialize(bytea, internal) RETURNS internal
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_agg_deserialize_wrapper';
CREATE FUNCTION collect._lump_agg_final(internal) RETURNS collect.lump
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_agg_final_wrapper';

CREATE AGGREGATE collect.lump_agg(jsonb) (
    SFUNC = collect._lump_agg_trans,
    STYPE = internal,
    FINALFUNC = collect._lump_agg_final,
    COMBINEFUNC = collect._lump_agg_combine,
    SERIALFUNC = collect._lump_agg_serialize,
    DESERIALFUNC = collect._lump_agg_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE collect.lump_agg(jsonb) IS
    'Gathers values into one lump, in input order (use ORDER BY inside the call to fix it)';

-- Functions of `internal` arguments are for Postgres (type I/O, aggregates) to call, not SQL.
REVOKE EXECUTE ON FUNCTION
    collect.lump_recv(internal),
    collect._lump_agg_trans(internal, jsonb),
    collect._lump_agg_combine(internal, internal),
    collect._lump_agg_serialize(internal),
    collect._lump_agg_deserialize(bytea, internal),
    collect._lump_agg_final(internal)
    FROM PUBLIC;

-- collect.collection: an immutable, ordered lump of JSON entries, gzip-compressed behind a
-- small versioned header (see src/lump/format.rs). The C functions are in src/lump/sql.rs.

CREATE TYPE collect.collection;

CREATE FUNCTION collect.collection_in(cstring) RETURNS collect.collection
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_in_wrapper';
CREATE FUNCTION collect.collection_out(collect.collection) RETURNS cstring
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_out_wrapper';
CREATE FUNCTION collect.collection_recv(internal) RETURNS collect.collection
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_recv_wrapper';
CREATE FUNCTION collect.collection_send(collect.collection) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_send_wrapper';

-- STORAGE = external: the payload is already gzipped, so TOAST must not try pglz on it, and
-- entry_count() can fetch only the header's slice of a large value.
CREATE TYPE collect.collection (
    INPUT = collect.collection_in,
    OUTPUT = collect.collection_out,
    RECEIVE = collect.collection_recv,
    SEND = collect.collection_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = external
);
COMMENT ON TYPE collect.collection IS
    'An ordered lump of JSON entries stored gzip-compressed; text form is a JSON array';

CREATE FUNCTION collect.collection(entries jsonb) RETURNS collect.collection
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_from_jsonb_wrapper';
COMMENT ON FUNCTION collect.collection(jsonb) IS
    'A collection of the elements of a JSON array, or of one entry if not an array';

CREATE FUNCTION collect.to_jsonb(c collect.collection) RETURNS jsonb
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_to_jsonb_wrapper';
COMMENT ON FUNCTION collect.to_jsonb(collect.collection) IS 'The entries as a JSON array';

CREATE FUNCTION collect.entries(c collect.collection) RETURNS SETOF jsonb
    IMMUTABLE STRICT PARALLEL SAFE ROWS 100 LANGUAGE c AS 'MODULE_PATHNAME', 'collection_entries_wrapper';
COMMENT ON FUNCTION collect.entries(collect.collection) IS 'One row per entry, in order';

CREATE FUNCTION collect.entry_count(c collect.collection) RETURNS bigint
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_entry_count_wrapper';
COMMENT ON FUNCTION collect.entry_count(collect.collection) IS
    'How many entries, read from the header without decompressing';

CREATE FUNCTION collect.collection_append(c collect.collection, entries jsonb) RETURNS collect.collection
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_append_wrapper';
COMMENT ON FUNCTION collect.collection_append(collect.collection, jsonb) IS
    'c with one entry appended, or each element of a JSON array; the existing compressed bytes are copied, not decompressed';

CREATE OPERATOR collect.|| (
    LEFTARG = collect.collection,
    RIGHTARG = jsonb,
    FUNCTION = collect.collection_append
);

CREATE FUNCTION collect.merge(a collect.collection, b collect.collection) RETURNS collect.collection
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_merge_wrapper';
COMMENT ON FUNCTION collect.merge(collect.collection, collect.collection) IS
    'a''s entries, then b''s, without decompressing either';

CREATE CAST (collect.collection AS jsonb) WITH FUNCTION collect.to_jsonb(collect.collection);
CREATE CAST (jsonb AS collect.collection) WITH FUNCTION collect.collection(jsonb);

-- collection_agg(jsonb): parallel safe, with partial states combined across workers.
CREATE FUNCTION collect.collection_agg_trans(internal, jsonb) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_agg_trans_wrapper';
CREATE FUNCTION collect.collection_agg_combine(internal, internal) RETURNS internal
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_agg_combine_wrapper';
CREATE FUNCTION collect.collection_agg_serialize(internal) RETURNS bytea
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_agg_serialize_wrapper';
CREATE FUNCTION collect.collection_agg_deserialize(bytea, internal) RETURNS internal
    IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_agg_deserialize_wrapper';
CREATE FUNCTION collect.collection_agg_final(internal) RETURNS collect.collection
    IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'collection_agg_final_wrapper';

CREATE AGGREGATE collect.collection_agg(jsonb) (
    SFUNC = collect.collection_agg_trans,
    STYPE = internal,
    FINALFUNC = collect.collection_agg_final,
    COMBINEFUNC = collect.collection_agg_combine,
    SERIALFUNC = collect.collection_agg_serialize,
    DESERIALFUNC = collect.collection_agg_deserialize,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE collect.collection_agg(jsonb) IS
    'Gathers values into one collection, in input order (use ORDER BY inside the call to fix it)';

-- Functions of `internal` arguments are for Postgres (type I/O, aggregates) to call, not SQL.
REVOKE EXECUTE ON FUNCTION
    collect.collection_recv(internal),
    collect.collection_agg_trans(internal, jsonb),
    collect.collection_agg_combine(internal, internal),
    collect.collection_agg_serialize(internal),
    collect.collection_agg_deserialize(bytea, internal),
    collect.collection_agg_final(internal)
    FROM PUBLIC;

-- Copies the users of a PostgreSQL database filled by 'muster import' 99 times (new ids,
-- userNames, emails and externalIds; index rows included), for read benchmarks at 100x the
-- imported size (BENCHMARKS.md, issue 13). No change records: the feed is not measured.
-- psql -h 127.0.0.1 -U postgres -d bench -f scripts/bench-fill-postgres.sql
\timing on
SET maintenance_work_mem = '1GB';
SET synchronous_commit = off;
DROP INDEX resource_values_trigram;
DROP INDEX resource_values_lookup;
CREATE TEMP TABLE map AS
  SELECT r.seq AS old_seq, k, gen_random_uuid()::text AS new_id
  FROM resources r, generate_series(1, 99) k;
CREATE TEMP TABLE newr AS
WITH ins AS (
  INSERT INTO resources (tenant_id, id, resource_type, json, version, created, last_modified,
                         user_name_lower, display_name, display_name_lower, external_id, unmapped)
  SELECT r.tenant_id, m.new_id, r.resource_type,
         replace(replace(replace(r.json::text, r.id, m.new_id), '@contoso.com', '-k' || m.k || '@contoso.com'),
                 '"externalId":"e-', '"externalId":"e-k' || m.k || '-')::json,
         r.version, r.created, r.last_modified,
         replace(r.user_name_lower, '@contoso.com', '-k' || m.k || '@contoso.com'),
         r.display_name, r.display_name_lower,
         'e-k' || m.k || '-' || substr(r.external_id, 3), r.unmapped
  FROM resources r JOIN map m ON m.old_seq = r.seq
  RETURNING seq, id)
SELECT seq AS new_seq, id FROM ins;
CREATE INDEX ON newr (id);
INSERT INTO resource_values (resource_seq, path_id, element, item, tenant_id, present, indexed,
                             value_lower, value_exact, value_time, value_num, value_bool)
SELECT n.new_seq, v.path_id, v.element, v.item, v.tenant_id, v.present, v.indexed,
       CASE WHEN v.value_lower LIKE '%@contoso.com' THEN replace(v.value_lower, '@contoso.com', '-k' || m.k || '@contoso.com')
            WHEN v.value_lower LIKE 'e-%' THEN 'e-k' || m.k || '-' || substr(v.value_lower, 3)
            ELSE v.value_lower END,
       v.value_exact, v.value_time, v.value_num, v.value_bool
FROM resource_values v JOIN map m ON v.resource_seq = m.old_seq JOIN newr n ON n.id = m.new_id;
CREATE INDEX resource_values_lookup ON resource_values
    (tenant_id, path_id, value_lower text_pattern_ops) WHERE indexed;
CREATE INDEX resource_values_trigram ON resource_values
    USING gin (value_lower gin_trgm_ops) WHERE indexed;
VACUUM ANALYZE;
SELECT count(*) FROM resources;

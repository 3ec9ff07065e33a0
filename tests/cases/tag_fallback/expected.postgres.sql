-- veil runtime: header

-- =============================================================================================
-- Before anything changes: veil never adopts what it did not create. Every role, schema, table
-- and function that this script would reuse is checked (owner, attributes, members, ADMIN
-- holders, triggers, rules, policies, unknown objects); any finding stops the script here, and
-- psql -1 rolls back everything, with one line per object saying what to do.
-- =============================================================================================
CREATE TEMP TABLE veil_expected (kind text NOT NULL, name text NOT NULL) ON COMMIT DROP;
INSERT INTO pg_temp.veil_expected (kind, name) VALUES
  ('owner', 'veil_owner'),
  ('views', 'veil_views'),
  ('auditors', 'veil_auditors'),
  ('view_schema', 'app_protected');

-- veil runtime: pre-flight

-- veil runtime: governance schema

-- "veil"."managed_role": exactly the repository's rows.
DELETE FROM "veil"."managed_role" AS t
 WHERE (t."role_name") NOT IN (VALUES
  ('veil_auditors'),
  ('veil_owner'),
  ('veil_views')
);
INSERT INTO "veil"."managed_role" AS t ("role_name", "kind") VALUES
  ('veil_auditors', 'auditors'),
  ('veil_owner', 'owner'),
  ('veil_views', 'views')
ON CONFLICT ("role_name") DO UPDATE SET
  "kind" = EXCLUDED."kind"
 WHERE (t."kind")
       IS DISTINCT FROM (EXCLUDED."kind");
-- "veil"."project": exactly the repository's rows.
DELETE FROM "veil"."project";
-- "veil"."project_purpose": exactly the repository's rows.
DELETE FROM "veil"."project_purpose";
-- "veil"."project_member": exactly the repository's rows.
DELETE FROM "veil"."project_member";
-- "veil"."project_source": exactly the repository's rows.
DELETE FROM "veil"."project_source";
-- "veil"."user_attribute": exactly the repository's rows.
DELETE FROM "veil"."user_attribute";
-- "veil"."user_group": exactly the repository's rows.
DELETE FROM "veil"."user_group";
-- "veil"."protected_table": exactly the repository's rows.
DELETE FROM "veil"."protected_table" AS t
 WHERE (t."table_schema", t."table_name") NOT IN (VALUES
  ('app', 'people')
);
INSERT INTO "veil"."protected_table" AS t ("table_schema", "table_name", "view_schema", "view_name", "policies", "columns") VALUES
  ('app', 'people', 'app_protected', 'people', ARRAY['veil_base']::text[], ARRAY['name', 'age', 'born']::text[])
ON CONFLICT ("table_schema", "table_name") DO UPDATE SET
  "view_schema" = EXCLUDED."view_schema",
  "view_name" = EXCLUDED."view_name",
  "policies" = EXCLUDED."policies",
  "columns" = EXCLUDED."columns"
 WHERE (t."view_schema", t."view_name", t."policies", t."columns")
       IS DISTINCT FROM (EXCLUDED."view_schema", EXCLUDED."view_name", EXCLUDED."policies", EXCLUDED."columns");

-- veil runtime: roles, access and routines

-- =============================================================================================
-- Protected tables: row policies on the table, masks in a view that consumers read instead.
-- The views are not security_barrier views: they have no WHERE of their own (the row rules are
-- row policies on the table, which PostgreSQL applies before any condition of the reader's that
-- is not leakproof, flattened view or not), and a reader's condition on a masked column reads
-- the view's masking expression, never the column. A barrier would only make every read project
-- twice.
-- =============================================================================================

CREATE SCHEMA IF NOT EXISTS "app_protected" AUTHORIZATION "veil_views";
GRANT USAGE ON SCHEMA "app_protected" TO PUBLIC;
REVOKE CREATE ON SCHEMA "app_protected" FROM PUBLIC;

-- app.people
ALTER TABLE "app"."people" ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "veil_base" ON "app"."people";
CREATE POLICY "veil_base" ON "app"."people" AS PERMISSIVE FOR SELECT
  TO "veil_views" USING (TRUE);
GRANT SELECT ON TABLE "app"."people" TO "veil_views";
INSERT INTO pg_temp.veil_view_sql VALUES ('app_protected', 'people',
'CREATE OR REPLACE VIEW "app_protected"."people" AS
SELECT
  CAST(
    CAST(
      (
        CASE
          WHEN LENGTH(t."name") > 1 THEN LEFT(t."name", 1) || REPEAT(''*'', LENGTH(t."name") - 1)
          ELSE REPEAT(''*'', LENGTH(t."name"))
        END
      ) AS varchar(100)
    ) AS varchar(100)
  ) AS "name",
  CAST(CAST(NULL AS integer) AS integer) AS "age",
  CAST(CAST(NULL AS date) AS date) AS "born"
FROM "app"."people" AS t');

-- veil runtime: masking views
ALTER VIEW "app_protected"."people" OWNER TO "veil_views";

-- veil runtime: grants

-- =============================================================================================
-- What this script created, as PostgreSQL prints it back (read by `veil verify`; the texts are
-- those of the catalog, readable by anyone in pg_views, pg_policies and pg_proc anyway).
-- =============================================================================================
DELETE FROM "veil".applied_definition;
INSERT INTO "veil".applied_definition AS d
  (kind, schema_name, relation_name, object_name, source_digest, definition)
SELECT 'view', 'app_protected', 'people', '',
       '555f4a6969ecf8c305aa6b486cdec06f600b8a1c89d71ac3d2a51fc6dce91438',
       pg_catalog.pg_get_viewdef('"app_protected"."people"'::pg_catalog.regclass)
UNION ALL
SELECT 'policy', 'app', 'people', p.polname,
       s.digest, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
  FROM pg_catalog.pg_policy AS p
  JOIN (VALUES
    ('veil_base', 'dfe88090c5ed7ac2f32571f0fc822fda4d8cd281fc7138c7cd6db656f6e2d081')
  ) AS s (name, digest) ON s.name = p.polname
 WHERE p.polrelid = '"app"."people"'::pg_catalog.regclass;
-- veil runtime: record of functions

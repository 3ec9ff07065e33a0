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
  ('group', 'g''; DROP ROLE x; --'),
  ('view_schema', 'O''Brien"; DROP TABLE x; --_protected');

-- veil runtime: pre-flight

-- veil runtime: governance schema

-- "veil"."managed_role": exactly the repository's rows.
DELETE FROM "veil"."managed_role" AS t
 WHERE (t."role_name") NOT IN (VALUES
  ('g''; DROP ROLE x; --'),
  ('veil_auditors'),
  ('veil_owner'),
  ('veil_views')
);
INSERT INTO "veil"."managed_role" AS t ("role_name", "kind") VALUES
  ('g''; DROP ROLE x; --', 'group'),
  ('veil_auditors', 'auditors'),
  ('veil_owner', 'owner'),
  ('veil_views', 'views')
ON CONFLICT ("role_name") DO UPDATE SET
  "kind" = EXCLUDED."kind"
 WHERE (t."kind")
       IS DISTINCT FROM (EXCLUDED."kind");
-- "veil"."project": exactly the repository's rows.
DELETE FROM "veil"."project" AS t
 WHERE (t."project") NOT IN (VALUES
  ('p''; --')
);
INSERT INTO "veil"."project" AS t ("project", "documentation") VALUES
  ('p''; --', NULL)
ON CONFLICT ("project") DO UPDATE SET
  "documentation" = EXCLUDED."documentation"
 WHERE (t."documentation")
       IS DISTINCT FROM (EXCLUDED."documentation");
-- "veil"."project_purpose": exactly the repository's rows.
DELETE FROM "veil"."project_purpose" AS t
 WHERE (t."project", t."purpose") NOT IN (VALUES
  ('p''; --', 'O''Brien"; DROP TABLE x; --')
);
INSERT INTO "veil"."project_purpose" AS t ("project", "purpose", "approved", "state", "approved_by", "approved_at", "acknowledgement") VALUES
  ('p''; --', 'O''Brien"; DROP TABLE x; --', FALSE, 'pending', NULL, NULL, NULL)
ON CONFLICT ("project", "purpose") DO UPDATE SET
  "approved" = EXCLUDED."approved",
  "state" = EXCLUDED."state",
  "approved_by" = EXCLUDED."approved_by",
  "approved_at" = EXCLUDED."approved_at",
  "acknowledgement" = EXCLUDED."acknowledgement"
 WHERE (t."approved", t."state", t."approved_by", t."approved_at", t."acknowledgement")
       IS DISTINCT FROM (EXCLUDED."approved", EXCLUDED."state", EXCLUDED."approved_by", EXCLUDED."approved_at", EXCLUDED."acknowledgement");
-- "veil"."project_member": exactly the repository's rows.
DELETE FROM "veil"."project_member" AS t
 WHERE (t."project", t."member") NOT IN (VALUES
  ('p''; --', 'u''"; --')
);
INSERT INTO "veil"."project_member" AS t ("project", "member") VALUES
  ('p''; --', 'u''"; --')
ON CONFLICT ("project", "member") DO NOTHING;
-- "veil"."project_source": exactly the repository's rows.
DELETE FROM "veil"."project_source" AS t
 WHERE (t."project", t."source") NOT IN (VALUES
  ('p''; --', '`O''Brien"; DROP TABLE x; --`.t$1')
);
INSERT INTO "veil"."project_source" AS t ("project", "source") VALUES
  ('p''; --', '`O''Brien"; DROP TABLE x; --`.t$1')
ON CONFLICT ("project", "source") DO NOTHING;
-- "veil"."user_attribute": exactly the repository's rows.
DELETE FROM "veil"."user_attribute";
-- "veil"."user_group": exactly the repository's rows.
DELETE FROM "veil"."user_group";
-- "veil"."protected_table": exactly the repository's rows.
DELETE FROM "veil"."protected_table" AS t
 WHERE (t."table_schema", t."table_name") NOT IN (VALUES
  ('O''Brien"; DROP TABLE x; --', 't$1')
);
INSERT INTO "veil"."protected_table" AS t ("table_schema", "table_name", "view_schema", "view_name", "policies", "columns") VALUES
  ('O''Brien"; DROP TABLE x; --', 't$1', 'O''Brien"; DROP TABLE x; --_protected', 't$1', ARRAY['veil_base', 'veil_rows_891bf1e9']::text[], ARRAY['id', 'col"; DELETE FROM y; --', 'naïve ünïcödé', 'back\slash']::text[])
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

CREATE SCHEMA IF NOT EXISTS "O'Brien""; DROP TABLE x; --_protected" AUTHORIZATION "veil_views";
GRANT USAGE ON SCHEMA "O'Brien""; DROP TABLE x; --_protected" TO PUBLIC;
REVOKE CREATE ON SCHEMA "O'Brien""; DROP TABLE x; --_protected" FROM PUBLIC;

-- O'Brien"; DROP TABLE x; --.t$1
ALTER TABLE "O'Brien""; DROP TABLE x; --"."t$1" ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "veil_base" ON "O'Brien""; DROP TABLE x; --"."t$1";
CREATE POLICY "veil_base" ON "O'Brien""; DROP TABLE x; --"."t$1" AS PERMISSIVE FOR SELECT
  TO "veil_views" USING (TRUE);
DROP POLICY IF EXISTS "veil_rows_891bf1e9" ON "O'Brien""; DROP TABLE x; --"."t$1";
CREATE POLICY "veil_rows_891bf1e9" ON "O'Brien""; DROP TABLE x; --"."t$1" AS RESTRICTIVE FOR SELECT TO PUBLIC
  USING ((
    (current_user = 'u''"; --')
    OR COALESCE(("col""; DELETE FROM y; --" <> 'x''); --'), FALSE)
  ));
GRANT SELECT ON TABLE "O'Brien""; DROP TABLE x; --"."t$1" TO "veil_views";
INSERT INTO pg_temp.veil_view_sql VALUES ('O''Brien"; DROP TABLE x; --_protected', 't$1',
'CREATE OR REPLACE VIEW "O''Brien""; DROP TABLE x; --_protected"."t$1" AS
SELECT
  t."id" AS "id",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_purpose"(current_user, ''O''''Brien"; DROP TABLE x; --'', ''`O''''Brien"; DROP TABLE x; --`.t$1'')) THEN t."col""; DELETE FROM y; --"
      ELSE CAST(''''''; DROP TABLE z; -- $$ $veil$ \ 
'' AS varchar(40))
    END AS varchar(40)
  ) AS "col""; DELETE FROM y; --",
  CAST(
    CASE
      WHEN (SELECT pg_catalog.pg_has_role(current_user, ''g''''; DROP ROLE x; --'', ''MEMBER'')) THEN t."naïve ünïcödé"
      ELSE pg_catalog.regexp_replace(CAST(t."naïve ünïcödé" AS text) COLLATE "C", '''''''', ''\\'''''', ''g'')
    END AS text
  ) AS "naïve ünïcödé",
  CAST(
    CAST(
      LEFT(
        pg_catalog.encode(
          pg_catalog.sha256(
            pg_catalog.convert_to(
              (
                SELECT LEFT(
                  pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(k."key_hex" || '':"O''''Brien""; DROP TABLE x; --".t$1'', ''UTF8'')), ''hex''),
                  32
                )
                FROM "veil"."hash_key" AS k
              ) || CAST(t."back\slash" AS text),
              ''UTF8''
            )
          ),
          ''hex''
        ),
        30
      ) AS varchar(30)
    ) AS varchar(30)
  ) AS "back\slash"
FROM "O''Brien""; DROP TABLE x; --"."t$1" AS t');

-- veil runtime: masking views
ALTER VIEW "O'Brien""; DROP TABLE x; --_protected"."t$1" OWNER TO "veil_views";

-- veil runtime: grants

-- =============================================================================================
-- What this script created, as PostgreSQL prints it back (read by `veil verify`; the texts are
-- those of the catalog, readable by anyone in pg_views, pg_policies and pg_proc anyway).
-- =============================================================================================
DELETE FROM "veil".applied_definition;
INSERT INTO "veil".applied_definition AS d
  (kind, schema_name, relation_name, object_name, source_digest, definition)
SELECT 'view', 'O''Brien"; DROP TABLE x; --_protected', 't$1', '',
       'd506e7fa76c3eaab1603bf265b5dd73e55fe92748a6b84d79d1245936b96df15',
       pg_catalog.pg_get_viewdef('"O''Brien""; DROP TABLE x; --_protected"."t$1"'::pg_catalog.regclass)
UNION ALL
SELECT 'policy', 'O''Brien"; DROP TABLE x; --', 't$1', p.polname,
       s.digest, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
  FROM pg_catalog.pg_policy AS p
  JOIN (VALUES
    ('veil_base', 'dfe88090c5ed7ac2f32571f0fc822fda4d8cd281fc7138c7cd6db656f6e2d081'),
    ('veil_rows_891bf1e9', '891bf1e92d0ca4f4818550c73900dd4605e57a1ec8f82c90fd2e3b6f01771095')
  ) AS s (name, digest) ON s.name = p.polname
 WHERE p.polrelid = '"O''Brien""; DROP TABLE x; --"."t$1"'::pg_catalog.regclass;
-- veil runtime: record of functions

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
  ('group', 'hr_admins'),
  ('view_schema', 'app_protected');

-- veil runtime: pre-flight

-- veil runtime: governance schema

-- "veil"."managed_role": exactly the repository's rows.
DELETE FROM "veil"."managed_role" AS t
 WHERE (t."role_name") NOT IN (VALUES
  ('hr_admins'),
  ('veil_auditors'),
  ('veil_owner'),
  ('veil_views')
);
INSERT INTO "veil"."managed_role" AS t ("role_name", "kind") VALUES
  ('hr_admins', 'group'),
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
  ('helpdesk')
);
INSERT INTO "veil"."project" AS t ("project", "documentation") VALUES
  ('helpdesk', NULL)
ON CONFLICT ("project") DO UPDATE SET
  "documentation" = EXCLUDED."documentation"
 WHERE (t."documentation")
       IS DISTINCT FROM (EXCLUDED."documentation");
-- "veil"."project_purpose": exactly the repository's rows.
DELETE FROM "veil"."project_purpose" AS t
 WHERE (t."project", t."purpose") NOT IN (VALUES
  ('helpdesk', 'Support')
);
INSERT INTO "veil"."project_purpose" AS t ("project", "purpose", "approved", "state", "approved_by", "approved_at", "acknowledgement") VALUES
  ('helpdesk', 'Support', TRUE, 'approved', 'carol', '2026-01-05T00:00:00Z', NULL)
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
  ('helpdesk', 'ann'),
  ('helpdesk', 'bob')
);
INSERT INTO "veil"."project_member" AS t ("project", "member") VALUES
  ('helpdesk', 'ann'),
  ('helpdesk', 'bob')
ON CONFLICT ("project", "member") DO NOTHING;
-- "veil"."project_source": exactly the repository's rows.
DELETE FROM "veil"."project_source" AS t
 WHERE (t."project", t."source") NOT IN (VALUES
  ('helpdesk', 'app.people')
);
INSERT INTO "veil"."project_source" AS t ("project", "source") VALUES
  ('helpdesk', 'app.people')
ON CONFLICT ("project", "source") DO NOTHING;
-- "veil"."user_attribute": exactly the repository's rows.
DELETE FROM "veil"."user_attribute";
-- "veil"."user_group": exactly the repository's rows.
DELETE FROM "veil"."user_group" AS t
 WHERE (t."user_name", t."group_name") NOT IN (VALUES
  ('ann', 'hr_admins')
);
INSERT INTO "veil"."user_group" AS t ("user_name", "group_name") VALUES
  ('ann', 'hr_admins')
ON CONFLICT ("user_name", "group_name") DO NOTHING;
-- "veil"."protected_table": exactly the repository's rows.
DELETE FROM "veil"."protected_table" AS t
 WHERE (t."table_schema", t."table_name") NOT IN (VALUES
  ('app', 'people')
);
INSERT INTO "veil"."protected_table" AS t ("table_schema", "table_name", "view_schema", "view_name", "policies", "columns") VALUES
  ('app', 'people', 'app_protected', 'people', ARRAY['veil_base']::text[], ARRAY['name', 'card', 'email', 'born', 'salary', 'phone', 'notes']::text[])
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
  CAST(CAST(NULL AS varchar(100)) AS varchar(100)) AS "name",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_purpose"(current_user, ''Support'', ''app.people'')) THEN t."card"
      ELSE CAST(
        (
          CASE
            WHEN LENGTH(t."card") > 4 THEN REPEAT(''*'', LENGTH(t."card") - 4) || RIGHT(t."card", 4)
            ELSE REPEAT(''*'', LENGTH(t."card"))
          END
        ) AS varchar(19)
      )
    END AS varchar(19)
  ) AS "card",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_purpose"(current_user, ''Support'', ''app.people'')) THEN t."email"
      ELSE CAST(
        pg_catalog.encode(
          pg_catalog.sha256(
            pg_catalog.convert_to(
              (SELECT LEFT(pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(k."key_hex" || '':app.people'', ''UTF8'')), ''hex''), 32) FROM "veil"."hash_key" AS k) || CAST(t."email" AS text),
              ''UTF8''
            )
          ),
          ''hex''
        ) AS varchar(320)
      )
    END AS varchar(320)
  ) AS "email",
  CAST(CAST(NULL AS date) AS date) AS "born",
  CAST(
    CASE
      WHEN (SELECT pg_catalog.pg_has_role(current_user, ''hr_admins'', ''MEMBER'')) THEN t."salary"
      ELSE CAST((ROUND(CAST(t."salary" AS numeric) / 1000) * 1000) AS numeric(10, 2))
    END AS numeric(10, 2)
  ) AS "salary",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_purpose"(current_user, ''Support'', ''app.people'')) THEN t."phone"
      ELSE CAST(
        pg_catalog.encode(
          pg_catalog.sha256(
            pg_catalog.convert_to(
              (SELECT LEFT(pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(k."key_hex" || '':app.people'', ''UTF8'')), ''hex''), 32) FROM "veil"."hash_key" AS k) || CAST(t."phone" AS text),
              ''UTF8''
            )
          ),
          ''hex''
        ) AS varchar(64)
      )
    END AS varchar(64)
  ) AS "phone",
  t."notes" AS "notes"
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
       'f60c85ec30624405e11f6f1ac210d2d8ac582f9dd22accc736e895433df76d81',
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

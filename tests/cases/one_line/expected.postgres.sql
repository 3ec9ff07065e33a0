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
  ('view_schema', 'sales_protected');

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
DELETE FROM "veil"."project" AS t
 WHERE (t."project") NOT IN (VALUES
  ('fraud_q4')
);
INSERT INTO "veil"."project" AS t ("project", "documentation") VALUES
  ('fraud_q4', NULL)
ON CONFLICT ("project") DO UPDATE SET
  "documentation" = EXCLUDED."documentation"
 WHERE (t."documentation")
       IS DISTINCT FROM (EXCLUDED."documentation");
-- "veil"."project_purpose": exactly the repository's rows.
DELETE FROM "veil"."project_purpose" AS t
 WHERE (t."project", t."purpose") NOT IN (VALUES
  ('fraud_q4', 'Fraud Detection')
);
INSERT INTO "veil"."project_purpose" AS t ("project", "purpose", "approved", "state", "approved_by", "approved_at", "acknowledgement") VALUES
  ('fraud_q4', 'Fraud Detection', TRUE, 'approved', 'carol', '2026-11-20T10:00:00Z', NULL)
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
  ('fraud_q4', 'alice')
);
INSERT INTO "veil"."project_member" AS t ("project", "member") VALUES
  ('fraud_q4', 'alice')
ON CONFLICT ("project", "member") DO NOTHING;
-- "veil"."project_source": exactly the repository's rows.
DELETE FROM "veil"."project_source" AS t
 WHERE (t."project", t."source") NOT IN (VALUES
  ('fraud_q4', 'sales.transactions')
);
INSERT INTO "veil"."project_source" AS t ("project", "source") VALUES
  ('fraud_q4', 'sales.transactions')
ON CONFLICT ("project", "source") DO NOTHING;
-- "veil"."user_attribute": exactly the repository's rows.
DELETE FROM "veil"."user_attribute";
-- "veil"."user_group": exactly the repository's rows.
DELETE FROM "veil"."user_group";
-- "veil"."protected_table": exactly the repository's rows.
DELETE FROM "veil"."protected_table" AS t
 WHERE (t."table_schema", t."table_name") NOT IN (VALUES
  ('sales', 'transactions')
);
INSERT INTO "veil"."protected_table" AS t ("table_schema", "table_name", "view_schema", "view_name", "policies", "columns") VALUES
  ('sales', 'transactions', 'sales_protected', 'transactions', ARRAY['veil_base']::text[], ARRAY['id', 'credit_card']::text[])
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

CREATE SCHEMA IF NOT EXISTS "sales_protected" AUTHORIZATION "veil_views";
GRANT USAGE ON SCHEMA "sales_protected" TO PUBLIC;
REVOKE CREATE ON SCHEMA "sales_protected" FROM PUBLIC;

-- sales.transactions
ALTER TABLE "sales"."transactions" ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "veil_base" ON "sales"."transactions";
CREATE POLICY "veil_base" ON "sales"."transactions" AS PERMISSIVE FOR SELECT
  TO "veil_views" USING (TRUE);
GRANT SELECT ON TABLE "sales"."transactions" TO "veil_views";
INSERT INTO pg_temp.veil_view_sql VALUES ('sales_protected', 'transactions',
'CREATE OR REPLACE VIEW "sales_protected"."transactions" AS
SELECT
  t."id" AS "id",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_purpose"(current_user, ''Fraud Detection'', ''sales.transactions'')) THEN t."credit_card"
      ELSE CAST(NULL AS varchar(19))
    END AS varchar(19)
  ) AS "credit_card"
FROM "sales"."transactions" AS t');

-- veil runtime: masking views
ALTER VIEW "sales_protected"."transactions" OWNER TO "veil_views";

-- veil runtime: grants

-- =============================================================================================
-- What this script created, as PostgreSQL prints it back (read by `veil verify`; the texts are
-- those of the catalog, readable by anyone in pg_views, pg_policies and pg_proc anyway).
-- =============================================================================================
DELETE FROM "veil".applied_definition;
INSERT INTO "veil".applied_definition AS d
  (kind, schema_name, relation_name, object_name, source_digest, definition)
SELECT 'view', 'sales_protected', 'transactions', '',
       '72abe443d1a50be7d0b04552900d8b63081b94db7902facbb0c11af3afd429b4',
       pg_catalog.pg_get_viewdef('"sales_protected"."transactions"'::pg_catalog.regclass)
UNION ALL
SELECT 'policy', 'sales', 'transactions', p.polname,
       s.digest, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
  FROM pg_catalog.pg_policy AS p
  JOIN (VALUES
    ('veil_base', 'dfe88090c5ed7ac2f32571f0fc822fda4d8cd281fc7138c7cd6db656f6e2d081')
  ) AS s (name, digest) ON s.name = p.polname
 WHERE p.polrelid = '"sales"."transactions"'::pg_catalog.regclass;
-- veil runtime: record of functions

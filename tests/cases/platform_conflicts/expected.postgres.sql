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
  ('group', 'analysts'),
  ('view_schema', 'shop_protected');

-- veil runtime: pre-flight

-- veil runtime: governance schema

-- "veil"."managed_role": exactly the repository's rows.
DELETE FROM "veil"."managed_role" AS t
 WHERE (t."role_name") NOT IN (VALUES
  ('analysts'),
  ('veil_auditors'),
  ('veil_owner'),
  ('veil_views')
);
INSERT INTO "veil"."managed_role" AS t ("role_name", "kind") VALUES
  ('analysts', 'group'),
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
DELETE FROM "veil"."user_attribute" AS t
 WHERE (t."user_name", t."key", t."value") NOT IN (VALUES
  ('ana', 'region', 'EU')
);
INSERT INTO "veil"."user_attribute" AS t ("user_name", "key", "value") VALUES
  ('ana', 'region', 'EU')
ON CONFLICT ("user_name", "key", "value") DO NOTHING;
-- "veil"."user_group": exactly the repository's rows.
DELETE FROM "veil"."user_group" AS t
 WHERE (t."user_name", t."group_name") NOT IN (VALUES
  ('ana', 'analysts')
);
INSERT INTO "veil"."user_group" AS t ("user_name", "group_name") VALUES
  ('ana', 'analysts')
ON CONFLICT ("user_name", "group_name") DO NOTHING;
-- "veil"."protected_table": exactly the repository's rows.
DELETE FROM "veil"."protected_table" AS t
 WHERE (t."table_schema", t."table_name") NOT IN (VALUES
  ('shop', 'orders')
);
INSERT INTO "veil"."protected_table" AS t ("table_schema", "table_name", "view_schema", "view_name", "policies", "columns") VALUES
  ('shop', 'orders', 'shop_protected', 'orders', ARRAY['veil_base', 'veil_rows_87703cc7']::text[], ARRAY['id', 'note', 'memo', 'qty', 'region']::text[])
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

CREATE SCHEMA IF NOT EXISTS "shop_protected" AUTHORIZATION "veil_views";
GRANT USAGE ON SCHEMA "shop_protected" TO PUBLIC;
REVOKE CREATE ON SCHEMA "shop_protected" FROM PUBLIC;

-- shop.orders
ALTER TABLE "shop"."orders" ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "veil_base" ON "shop"."orders";
CREATE POLICY "veil_base" ON "shop"."orders" AS PERMISSIVE FOR SELECT
  TO "veil_views" USING (TRUE);
DROP POLICY IF EXISTS "veil_rows_87703cc7" ON "shop"."orders";
CREATE POLICY "veil_rows_87703cc7" ON "shop"."orders" AS RESTRICTIVE FOR SELECT TO PUBLIC
  USING ((
    (SELECT "veil"."has_purpose"(current_user, 'Fraud', 'shop.orders'))
    OR COALESCE(
      (
        (CAST("region" AS text) = ANY ((SELECT "veil"."user_values"(current_user, 'region'))::text[]))
        AND ("qty" < 1000)
      ),
      FALSE
    )
  ));
GRANT SELECT ON TABLE "shop"."orders" TO "veil_views";
INSERT INTO pg_temp.veil_view_sql VALUES ('shop_protected', 'orders',
'CREATE OR REPLACE VIEW "shop_protected"."orders" AS
SELECT
  t."id" AS "id",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_purpose"(current_user, ''Fraud'', ''shop.orders'')) THEN t."note"
      WHEN NOT COALESCE((t."region" = ''EU''), TRUE) THEN t."note"
      ELSE CAST(NULL AS text)
    END AS text
  ) AS "note",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_purpose"(current_user, ''Fraud'', ''shop.orders'')) THEN t."memo"
      WHEN NOT COALESCE((t."qty" > 100), TRUE) THEN t."memo"
      ELSE CAST(NULL AS text)
    END AS text
  ) AS "memo",
  CAST(
    CASE
      WHEN (NOT (SELECT pg_catalog.pg_has_role(current_user, ''analysts'', ''MEMBER''))) THEN CAST(0 AS integer)
      ELSE t."qty"
    END AS integer
  ) AS "qty",
  t."region" AS "region"
FROM "shop"."orders" AS t');

-- veil runtime: masking views
ALTER VIEW "shop_protected"."orders" OWNER TO "veil_views";

-- veil runtime: grants

-- =============================================================================================
-- What this script created, as PostgreSQL prints it back (read by `veil verify`; the texts are
-- those of the catalog, readable by anyone in pg_views, pg_policies and pg_proc anyway).
-- =============================================================================================
DELETE FROM "veil".applied_definition;
INSERT INTO "veil".applied_definition AS d
  (kind, schema_name, relation_name, object_name, source_digest, definition)
SELECT 'view', 'shop_protected', 'orders', '',
       '62c326da0c42e1b7b7cc1a66f3ef9e59fda53c686082d9907114ab52611422e1',
       pg_catalog.pg_get_viewdef('"shop_protected"."orders"'::pg_catalog.regclass)
UNION ALL
SELECT 'policy', 'shop', 'orders', p.polname,
       s.digest, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
  FROM pg_catalog.pg_policy AS p
  JOIN (VALUES
    ('veil_base', 'dfe88090c5ed7ac2f32571f0fc822fda4d8cd281fc7138c7cd6db656f6e2d081'),
    ('veil_rows_87703cc7', '87703cc7d0e79be3cfb02a7e926b6a071f4c7cd9156f78bd4b0f4bc0505170ab')
  ) AS s (name, digest) ON s.name = p.polname
 WHERE p.polrelid = '"shop"."orders"'::pg_catalog.regclass;
-- veil runtime: record of functions

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
  ('group', 'auditors'),
  ('group', 'contractors'),
  ('view_schema', 'shop_protected');

-- veil runtime: pre-flight

-- veil runtime: governance schema

-- "veil"."managed_role": exactly the repository's rows.
DELETE FROM "veil"."managed_role" AS t
 WHERE (t."role_name") NOT IN (VALUES
  ('analysts'),
  ('auditors'),
  ('contractors'),
  ('veil_auditors'),
  ('veil_owner'),
  ('veil_views')
);
INSERT INTO "veil"."managed_role" AS t ("role_name", "kind") VALUES
  ('analysts', 'group'),
  ('auditors', 'group'),
  ('contractors', 'group'),
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
  ('fraud')
);
INSERT INTO "veil"."project" AS t ("project", "documentation") VALUES
  ('fraud', NULL)
ON CONFLICT ("project") DO UPDATE SET
  "documentation" = EXCLUDED."documentation"
 WHERE (t."documentation")
       IS DISTINCT FROM (EXCLUDED."documentation");
-- "veil"."project_purpose": exactly the repository's rows.
DELETE FROM "veil"."project_purpose" AS t
 WHERE (t."project", t."purpose") NOT IN (VALUES
  ('fraud', 'Fraud')
);
INSERT INTO "veil"."project_purpose" AS t ("project", "purpose", "approved", "state", "approved_by", "approved_at", "acknowledgement") VALUES
  ('fraud', 'Fraud', FALSE, 'pending', NULL, NULL, NULL)
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
  ('fraud', 'ana')
);
INSERT INTO "veil"."project_member" AS t ("project", "member") VALUES
  ('fraud', 'ana')
ON CONFLICT ("project", "member") DO NOTHING;
-- "veil"."project_source": exactly the repository's rows.
DELETE FROM "veil"."project_source" AS t
 WHERE (t."project", t."source") NOT IN (VALUES
  ('fraud', 'shop.orders')
);
INSERT INTO "veil"."project_source" AS t ("project", "source") VALUES
  ('fraud', 'shop.orders')
ON CONFLICT ("project", "source") DO NOTHING;
-- "veil"."user_attribute": exactly the repository's rows.
DELETE FROM "veil"."user_attribute" AS t
 WHERE (t."user_name", t."key", t."value") NOT IN (VALUES
  ('ana', 'region', 'EU'),
  ('ana', 'region', 'US'),
  ('bo', 'region', 'EU')
);
INSERT INTO "veil"."user_attribute" AS t ("user_name", "key", "value") VALUES
  ('ana', 'region', 'EU'),
  ('ana', 'region', 'US'),
  ('bo', 'region', 'EU')
ON CONFLICT ("user_name", "key", "value") DO NOTHING;
-- "veil"."user_group": exactly the repository's rows.
DELETE FROM "veil"."user_group" AS t
 WHERE (t."user_name", t."group_name") NOT IN (VALUES
  ('ana', 'analysts'),
  ('bo', 'contractors')
);
INSERT INTO "veil"."user_group" AS t ("user_name", "group_name") VALUES
  ('ana', 'analysts'),
  ('bo', 'contractors')
ON CONFLICT ("user_name", "group_name") DO NOTHING;
-- "veil"."protected_table": exactly the repository's rows.
DELETE FROM "veil"."protected_table" AS t
 WHERE (t."table_schema", t."table_name") NOT IN (VALUES
  ('shop', 'orders'),
  ('shop', 'refunds')
);
INSERT INTO "veil"."protected_table" AS t ("table_schema", "table_name", "view_schema", "view_name", "policies", "columns") VALUES
  ('shop', 'orders', 'shop_protected', 'orders', ARRAY['veil_base', 'veil_rows_6bd9ecc8']::text[], ARRAY['id', 'card', 'email', 'phone', 'note', 'total', 'qty', 'score', 'region', 'placed_on', 'placed_at', 'paid_at', 'vip']::text[]),
  ('shop', 'refunds', 'shop_protected', 'refunds', ARRAY['veil_base', 'veil_rows_79d06319']::text[], ARRAY['id', 'order_id', 'reason']::text[])
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
DROP POLICY IF EXISTS "veil_rows_6bd9ecc8" ON "shop"."orders";
CREATE POLICY "veil_rows_6bd9ecc8" ON "shop"."orders" AS RESTRICTIVE FOR SELECT TO PUBLIC
  USING ((
    (SELECT pg_catalog.pg_has_role(current_user, 'auditors', 'MEMBER'))
    OR (
      (
        (SELECT "veil"."has_purpose"(current_user, 'Fraud', 'shop.orders'))
        OR COALESCE((CAST("region" AS text) = ANY ((SELECT "veil"."user_values"(current_user, 'region'))::text[])), FALSE)
      )
      AND COALESCE(
        (
          ("placed_at" >= ((CURRENT_TIMESTAMP AT TIME ZONE 'Etc/UTC') - INTERVAL '90 day'))
          OR ("vip" IS NOT NULL)
        ),
        FALSE
      )
    )
  ));
GRANT SELECT ON TABLE "shop"."orders" TO "veil_views";
INSERT INTO pg_temp.veil_view_sql VALUES ('shop_protected', 'orders',
'CREATE OR REPLACE VIEW "shop_protected"."orders" AS
SELECT
  t."id" AS "id",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_purpose"(current_user, ''Fraud'', ''shop.orders'')) THEN t."card"
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
      WHEN (SELECT "veil"."has_purpose"(current_user, ''Fraud'', ''shop.orders'')) THEN t."email"
      WHEN (SELECT pg_catalog.pg_has_role(current_user, ''analysts'', ''MEMBER'')) THEN CAST(SUBSTRING(CAST(t."email" AS text) FROM ''@([^@]*)$'') AS varchar(254))
      ELSE CAST(
        pg_catalog.encode(
          pg_catalog.sha256(
            pg_catalog.convert_to(
              (SELECT LEFT(pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(k."key_hex" || '':shop.orders'', ''UTF8'')), ''hex''), 32) FROM "veil"."hash_key" AS k) || CAST(t."email" AS text),
              ''UTF8''
            )
          ),
          ''hex''
        ) AS varchar(254)
      )
    END AS varchar(254)
  ) AS "email",
  CAST(
    CASE
      WHEN (
        (SELECT "veil"."has_purpose"(current_user, ''Fraud'', ''shop.orders''))
        OR (current_user = ''ana'')
      ) THEN t."phone"
      ELSE CAST(
        (
          CASE
            WHEN LENGTH(t."phone") > 3 THEN LEFT(t."phone", 3) || REPEAT(''*'', LENGTH(t."phone") - 3)
            ELSE REPEAT(''*'', LENGTH(t."phone"))
          END
        ) AS varchar(20)
      )
    END AS varchar(20)
  ) AS "phone",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_purpose"(current_user, ''Fraud'', ''shop.orders'')) THEN t."note"
      WHEN NOT COALESCE((t."qty" > 100), TRUE) THEN t."note"
      ELSE pg_catalog.regexp_replace(CAST(t."note" AS text) COLLATE "C", ''[0-9]'', ''#'', ''g'')
    END AS text
  ) AS "note",
  CAST(
    CASE
      WHEN (SELECT pg_catalog.pg_has_role(current_user, ''contractors'', ''MEMBER'')) THEN CAST((ROUND(CAST(t."total" AS numeric) / 10) * 10) AS numeric(12, 2))
      ELSE t."total"
    END AS numeric(12, 2)
  ) AS "total",
  CAST(
    CASE
      WHEN (NOT (SELECT pg_catalog.pg_has_role(current_user, ''analysts'', ''MEMBER''))) THEN CAST(0 AS integer)
      ELSE t."qty"
    END AS integer
  ) AS "qty",
  CAST(CAST((ROUND(CAST(t."score" AS numeric) / 0.5) * 0.5) AS double precision) AS double precision) AS "score",
  t."region" AS "region",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_attribute"(current_user, ''region'', ''US'')) THEN t."placed_on"
      ELSE CAST(pg_catalog.date_trunc(''month'', CAST(t."placed_on" AS timestamp)) AS date)
    END AS date
  ) AS "placed_on",
  CAST(CAST(pg_catalog.date_trunc(''quarter'', t."placed_at") AS timestamp) AS timestamp) AS "placed_at",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_purpose"(current_user, ''Fraud'', ''shop.orders'')) THEN t."paid_at"
      ELSE CAST(pg_catalog.date_trunc(''hour'', t."paid_at", ''Etc/UTC'') AS timestamptz)
    END AS timestamptz
  ) AS "paid_at",
  CAST(
    CASE
      WHEN (SELECT "veil"."has_purpose"(current_user, NULL::text, ''shop.orders'')) THEN t."vip"
      ELSE CAST(FALSE AS boolean)
    END AS boolean
  ) AS "vip"
FROM "shop"."orders" AS t');

-- shop.refunds
ALTER TABLE "shop"."refunds" ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "veil_base" ON "shop"."refunds";
CREATE POLICY "veil_base" ON "shop"."refunds" AS PERMISSIVE FOR SELECT
  TO "veil_views" USING (TRUE);
DROP POLICY IF EXISTS "veil_rows_79d06319" ON "shop"."refunds";
CREATE POLICY "veil_rows_79d06319" ON "shop"."refunds" AS RESTRICTIVE FOR SELECT TO PUBLIC
  USING ((
    (SELECT "veil"."has_purpose"(current_user, 'Fraud.Chargebacks', 'shop.refunds'))
    OR (SELECT "veil"."has_purpose"(current_user, 'Audit', 'shop.refunds'))
    OR (SELECT pg_catalog.pg_has_role(current_user, 'auditors', 'MEMBER'))
  ));
GRANT SELECT ON TABLE "shop"."refunds" TO "veil_views";
INSERT INTO pg_temp.veil_view_sql VALUES ('shop_protected', 'refunds',
'CREATE OR REPLACE VIEW "shop_protected"."refunds" AS
SELECT
  t."id" AS "id",
  t."order_id" AS "order_id",
  CAST(CAST(NULL AS text) AS text) AS "reason"
FROM "shop"."refunds" AS t');

-- veil runtime: masking views
ALTER VIEW "shop_protected"."orders" OWNER TO "veil_views";
ALTER VIEW "shop_protected"."refunds" OWNER TO "veil_views";

-- veil runtime: grants

-- =============================================================================================
-- What this script created, as PostgreSQL prints it back (read by `veil verify`; the texts are
-- those of the catalog, readable by anyone in pg_views, pg_policies and pg_proc anyway).
-- =============================================================================================
DELETE FROM "veil".applied_definition;
INSERT INTO "veil".applied_definition AS d
  (kind, schema_name, relation_name, object_name, source_digest, definition)
SELECT 'view', 'shop_protected', 'orders', '',
       '90a140797673eb3294183e7f9248c2a287fe70ef22e3879a0d5581c57459c61c',
       pg_catalog.pg_get_viewdef('"shop_protected"."orders"'::pg_catalog.regclass)
UNION ALL
SELECT 'policy', 'shop', 'orders', p.polname,
       s.digest, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
  FROM pg_catalog.pg_policy AS p
  JOIN (VALUES
    ('veil_base', 'dfe88090c5ed7ac2f32571f0fc822fda4d8cd281fc7138c7cd6db656f6e2d081'),
    ('veil_rows_6bd9ecc8', '6bd9ecc8852247102d0200e5f2e3b5a1f02a309a2e9c33306d81282757e77746')
  ) AS s (name, digest) ON s.name = p.polname
 WHERE p.polrelid = '"shop"."orders"'::pg_catalog.regclass;
INSERT INTO "veil".applied_definition AS d
  (kind, schema_name, relation_name, object_name, source_digest, definition)
SELECT 'view', 'shop_protected', 'refunds', '',
       '7ec6e96260e28e785489a1b88b59349e55987e3f9d2dcad96099c7798a5593fe',
       pg_catalog.pg_get_viewdef('"shop_protected"."refunds"'::pg_catalog.regclass)
UNION ALL
SELECT 'policy', 'shop', 'refunds', p.polname,
       s.digest, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
  FROM pg_catalog.pg_policy AS p
  JOIN (VALUES
    ('veil_base', 'dfe88090c5ed7ac2f32571f0fc822fda4d8cd281fc7138c7cd6db656f6e2d081'),
    ('veil_rows_79d06319', '79d06319dcf467eb6d1ee0825c935df9461dc7f3d8872687b9b4f2cd75ccfad1')
  ) AS s (name, digest) ON s.name = p.polname
 WHERE p.polrelid = '"shop"."refunds"'::pg_catalog.regclass;
-- veil runtime: record of functions

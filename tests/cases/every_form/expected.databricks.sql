-- veil runtime: header

-- 0. Pre-flight: checks, before anything changes, that no column mask or row filter veil did not
-- create sits on what veil protects (SET MASK and SET ROW FILTER would replace it). Run the script
-- so that the first error stops it (docs/targets/databricks.md, "Applying").
-- One query per relation of information_schema and catalog, over the list of what veil masks and
-- filters; the error names what it found.
BEGIN
  DECLARE found STRING;
  DECLARE veil_error MAP<STRING, STRING>;
  SET found = (SELECT array_join(array_sort(collect_set(concat_ws('.', m.schema_name, m.table_name, m.column_name))), ', ')
               FROM information_schema.column_masks m
               JOIN (VALUES
                 ('shop', 'orders', 'card'),
                 ('shop', 'orders', 'email'),
                 ('shop', 'orders', 'note'),
                 ('shop', 'orders', 'paid_at'),
                 ('shop', 'orders', 'phone'),
                 ('shop', 'orders', 'placed_at'),
                 ('shop', 'orders', 'placed_on'),
                 ('shop', 'orders', 'qty'),
                 ('shop', 'orders', 'score'),
                 ('shop', 'orders', 'total'),
                 ('shop', 'orders', 'vip'),
                 ('shop', 'refunds', 'reason')
               ) AS v(schema_name, table_name, column_name)
                 ON lower(m.schema_name) = v.schema_name AND lower(m.table_name) = v.table_name AND lower(m.column_name) = v.column_name
               WHERE lower(m.catalog_name) = lower(current_catalog())
                 AND NOT (lower(m.mask_catalog) = lower(current_catalog()) AND lower(m.mask_schema) = 'veil' AND startswith(lower(m.mask_name), 'mask__')));
  IF found <> '' THEN
    SET veil_error = map('errorMessage', concat('veil: ', found, ' has a column mask that veil did not create on a column that veil masks (see information_schema.column_masks); veil would replace it: drop it, or express it in the repository, then run the script again (nothing was changed)'));
    SIGNAL USER_RAISED_EXCEPTION SET MESSAGE_ARGUMENTS = veil_error;
  END IF;
  SET found = (SELECT array_join(array_sort(collect_set(concat_ws('.', f.schema_name, f.table_name))), ', ')
               FROM information_schema.row_filters f
               JOIN (VALUES
                 ('shop', 'orders'),
                 ('shop', 'refunds')
               ) AS v(schema_name, table_name)
                 ON lower(f.schema_name) = v.schema_name AND lower(f.table_name) = v.table_name
               WHERE lower(f.catalog_name) = lower(current_catalog())
                 AND NOT (lower(f.filter_catalog) = lower(current_catalog()) AND lower(f.filter_schema) = 'veil' AND startswith(lower(f.filter_name), 'rows__')));
  IF found <> '' THEN
    SET veil_error = map('errorMessage', concat('veil: ', found, ' has a row filter that veil did not create (see information_schema.row_filters); veil would replace it: drop it, or express it in the repository, then run the script again (nothing was changed)'));
    SIGNAL USER_RAISED_EXCEPTION SET MESSAGE_ARGUMENTS = veil_error;
  END IF;
  VALUES ('veil: pre-flight passed');
END;

-- veil runtime: governance schema

-- 2. Governance rows: exactly those of the repository --------------------------------------------
MERGE INTO veil.project AS t
USING (VALUES
  ('fraud', NULL)
) AS s(project_name, documentation)
ON t.project_name = s.project_name
WHEN MATCHED AND (
  t.documentation IS DISTINCT FROM s.documentation
) THEN UPDATE SET
  t.documentation = s.documentation
WHEN NOT MATCHED THEN INSERT (project_name, documentation) VALUES (s.project_name, s.documentation)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
MERGE INTO veil.project_purpose AS t
USING (VALUES
  ('fraud', 'Fraud', FALSE, 'pending', NULL, NULL, NULL)
) AS s(project_name, purpose_name, approved, state, approved_by, approved_at, acknowledgement)
ON t.project_name = s.project_name AND t.purpose_name = s.purpose_name
WHEN MATCHED AND (
  t.approved IS DISTINCT FROM s.approved
  OR t.state IS DISTINCT FROM s.state
  OR t.approved_by IS DISTINCT FROM s.approved_by
  OR t.approved_at IS DISTINCT FROM s.approved_at
  OR t.acknowledgement IS DISTINCT FROM s.acknowledgement
) THEN UPDATE SET
  t.approved = s.approved,
  t.state = s.state,
  t.approved_by = s.approved_by,
  t.approved_at = s.approved_at,
  t.acknowledgement = s.acknowledgement
WHEN NOT MATCHED THEN INSERT (project_name, purpose_name, approved, state, approved_by, approved_at, acknowledgement) VALUES (s.project_name, s.purpose_name, s.approved, s.state, s.approved_by, s.approved_at, s.acknowledgement)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
MERGE INTO veil.project_member AS t
USING (VALUES
  ('fraud', 'ana')
) AS s(project_name, principal)
ON t.project_name = s.project_name AND t.principal = s.principal
WHEN NOT MATCHED THEN INSERT (project_name, principal) VALUES (s.project_name, s.principal)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
MERGE INTO veil.project_source AS t
USING (VALUES
  ('fraud', 'shop.orders')
) AS s(project_name, source_table)
ON t.project_name = s.project_name AND t.source_table = s.source_table
WHEN NOT MATCHED THEN INSERT (project_name, source_table) VALUES (s.project_name, s.source_table)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
MERGE INTO veil.user_attribute AS t
USING (VALUES
  ('ana', 'region', 'EU'),
  ('ana', 'region', 'US'),
  ('bo', 'region', 'EU')
) AS s(principal, attribute_name, attribute_value)
ON t.principal = s.principal AND t.attribute_name = s.attribute_name AND t.attribute_value = s.attribute_value
WHEN NOT MATCHED THEN INSERT (principal, attribute_name, attribute_value) VALUES (s.principal, s.attribute_name, s.attribute_value)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
MERGE INTO veil.user_group AS t
USING (VALUES
  ('ana', 'analysts'),
  ('bo', 'contractors')
) AS s(principal, group_name)
ON t.principal = s.principal AND t.group_name = s.group_name
WHEN NOT MATCHED THEN INSERT (principal, group_name) VALUES (s.principal, s.group_name)
WHEN NOT MATCHED BY SOURCE THEN DELETE;

-- veil runtime: routines

-- 5. Column masks: one function per masked column ------------------------------------------------

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__card(card STRING)
RETURNS STRING
COMMENT 'veil: masks shop.orders.card'
RETURN CAST(
  CASE
    WHEN arrays_overlap(veil.active_purposes('shop.orders', current_user()), array('Fraud', 'Fraud.Chargebacks')) THEN card
    ELSE (
      CASE
        WHEN LENGTH(card) > 4 THEN REPEAT('*', LENGTH(card) - 4) || RIGHT(card, 4)
        ELSE REPEAT('*', LENGTH(card))
      END
    )
  END AS STRING
);
ALTER TABLE shop.orders ALTER COLUMN card SET MASK veil.mask__shop__orders__card;

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__email(email STRING)
RETURNS STRING
COMMENT 'veil: masks shop.orders.email'
RETURN CAST(
  CASE
    WHEN arrays_overlap(veil.active_purposes('shop.orders', current_user()), array('Fraud', 'Fraud.Chargebacks')) THEN email
    WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'analysts') THEN (
      CASE
        WHEN instr(email, '@') > 0 THEN substring_index(email, '@', -1)
      END
    )
    ELSE sha2((SELECT LEFT(sha2(k.key_hex || ':shop.orders', 256), 32) FROM veil.hash_key AS k) || email, 256)
  END AS STRING
);
ALTER TABLE shop.orders ALTER COLUMN email SET MASK veil.mask__shop__orders__email;

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__note(note STRING, qty INT)
RETURNS STRING
COMMENT 'veil: masks shop.orders.note'
RETURN CAST(
  CASE
    WHEN NOT COALESCE((qty > 100), TRUE) THEN note
    WHEN arrays_overlap(veil.active_purposes('shop.orders', current_user()), array('Fraud', 'Fraud.Chargebacks')) THEN note
    ELSE regexp_replace(note, '[0-9]', '#')
  END AS STRING
);
ALTER TABLE shop.orders ALTER COLUMN note SET MASK veil.mask__shop__orders__note USING COLUMNS (qty);

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__paid_at(paid_at TIMESTAMP)
RETURNS TIMESTAMP
COMMENT 'veil: masks shop.orders.paid_at'
RETURN CAST(
  CASE
    WHEN arrays_overlap(veil.active_purposes('shop.orders', current_user()), array('Fraud', 'Fraud.Chargebacks')) THEN paid_at
    ELSE CAST(timestamp_micros(unix_micros(paid_at) - pmod(unix_micros(paid_at), 3600000000)) AS TIMESTAMP)
  END AS TIMESTAMP
);
ALTER TABLE shop.orders ALTER COLUMN paid_at SET MASK veil.mask__shop__orders__paid_at;

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__phone(phone STRING)
RETURNS STRING
COMMENT 'veil: masks shop.orders.phone'
RETURN CAST(
  CASE
    WHEN (
      arrays_overlap(veil.active_purposes('shop.orders', current_user()), array('Fraud', 'Fraud.Chargebacks'))
      OR (UPPER(current_user()) = UPPER('ana'))
    ) THEN phone
    ELSE (
      CASE
        WHEN LENGTH(phone) > 3 THEN LEFT(phone, 3) || REPEAT('*', LENGTH(phone) - 3)
        ELSE REPEAT('*', LENGTH(phone))
      END
    )
  END AS STRING
);
ALTER TABLE shop.orders ALTER COLUMN phone SET MASK veil.mask__shop__orders__phone;

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__placed_at(placed_at TIMESTAMP_NTZ)
RETURNS TIMESTAMP_NTZ
COMMENT 'veil: masks shop.orders.placed_at'
RETURN CAST(CAST(CAST(trunc(CAST(placed_at AS DATE), 'QUARTER') AS TIMESTAMP_NTZ) AS TIMESTAMP_NTZ) AS TIMESTAMP_NTZ);
ALTER TABLE shop.orders ALTER COLUMN placed_at SET MASK veil.mask__shop__orders__placed_at;

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__placed_on(placed_on DATE)
RETURNS DATE
COMMENT 'veil: masks shop.orders.placed_on'
RETURN CAST(
  CASE
    WHEN EXISTS (
      SELECT ua.attribute_value
      FROM veil.user_attribute ua
      WHERE UPPER(ua.principal) = UPPER(current_user())
        AND ua.attribute_name = 'region'
        AND ua.attribute_value = 'US'
    ) THEN placed_on
    ELSE CAST(trunc(placed_on, 'MONTH') AS DATE)
  END AS DATE
);
ALTER TABLE shop.orders ALTER COLUMN placed_on SET MASK veil.mask__shop__orders__placed_on;

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__qty(qty INT)
RETURNS INT
COMMENT 'veil: masks shop.orders.qty'
RETURN CAST(
  CASE
    WHEN (NOT EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'analysts')) THEN CAST(0 AS INT)
    ELSE qty
  END AS INT
);
ALTER TABLE shop.orders ALTER COLUMN qty SET MASK veil.mask__shop__orders__qty;

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__score(score DOUBLE)
RETURNS DOUBLE
COMMENT 'veil: masks shop.orders.score'
RETURN CAST(CAST((ROUND(CAST(score AS DECIMAL(38, 10)) / 0.5) * 0.5) AS DOUBLE) AS DOUBLE);
ALTER TABLE shop.orders ALTER COLUMN score SET MASK veil.mask__shop__orders__score;

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__total(total DECIMAL(12, 2))
RETURNS DECIMAL(12, 2)
COMMENT 'veil: masks shop.orders.total'
RETURN CAST(
  CASE
    WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'contractors') THEN CAST(ROUND(CAST(total AS DECIMAL(38, 10)), -1) AS DECIMAL(12, 2))
    ELSE total
  END AS DECIMAL(12, 2)
);
ALTER TABLE shop.orders ALTER COLUMN total SET MASK veil.mask__shop__orders__total;

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__vip(vip BOOLEAN)
RETURNS BOOLEAN
COMMENT 'veil: masks shop.orders.vip'
RETURN CAST(
  CASE
    WHEN (size(veil.active_purposes('shop.orders', current_user())) > 0) THEN vip
    ELSE CAST(FALSE AS BOOLEAN)
  END AS BOOLEAN
);
ALTER TABLE shop.orders ALTER COLUMN vip SET MASK veil.mask__shop__orders__vip;

CREATE OR REPLACE FUNCTION veil.mask__shop__refunds__reason(reason STRING)
RETURNS STRING
COMMENT 'veil: masks shop.refunds.reason'
RETURN CAST(CAST(NULL AS STRING) AS STRING);
ALTER TABLE shop.refunds ALTER COLUMN reason SET MASK veil.mask__shop__refunds__reason;

-- 6. Row filters: one function per table with row rules, AND-ing them ----------------------------

CREATE OR REPLACE FUNCTION veil.rows__shop__orders(region STRING, placed_at TIMESTAMP_NTZ, vip BOOLEAN)
RETURNS BOOLEAN
COMMENT 'veil: rows of shop.orders'
RETURN (
  EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'auditors')
  OR (
    (
      arrays_overlap(veil.active_purposes('shop.orders', current_user()), array('Fraud', 'Fraud.Chargebacks'))
      OR COALESCE(
        (
          CASE
            WHEN NOT EXISTS (SELECT ua.attribute_value FROM veil.user_attribute ua WHERE UPPER(ua.principal) = UPPER(current_user()) AND ua.attribute_name = 'region') THEN FALSE
            WHEN region IS NULL THEN NULL
            ELSE region IN (SELECT ua.attribute_value FROM veil.user_attribute ua WHERE UPPER(ua.principal) = UPPER(current_user()) AND ua.attribute_name = 'region')
          END
        ),
        FALSE
      )
    )
    AND COALESCE(
      (
        (placed_at >= ((CAST('1970-01-01 00:00:00' AS TIMESTAMP_NTZ) + unix_micros(current_timestamp()) * INTERVAL '0.000001' SECOND) - INTERVAL '90 day'))
        OR (vip IS NOT NULL)
      ),
      FALSE
    )
  )
);
ALTER TABLE shop.orders SET ROW FILTER veil.rows__shop__orders ON (region, placed_at, vip);

CREATE OR REPLACE FUNCTION veil.rows__shop__refunds()
RETURNS BOOLEAN
COMMENT 'veil: rows of shop.refunds'
RETURN SELECT (
  arrays_overlap(veil_lookup.veil_purposes, array('Fraud.Chargebacks'))
  OR arrays_overlap(veil_lookup.veil_purposes, array('Audit'))
  OR EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'auditors')
)
FROM (SELECT veil.active_purposes('shop.refunds', current_user()) AS veil_purposes) AS veil_lookup;
ALTER TABLE shop.refunds SET ROW FILTER veil.rows__shop__refunds ON ();

-- 7. What this script attached, so that a newer script can remove what it no longer needs ---------
MERGE INTO veil.applied_object AS t
USING (VALUES
  ('veil.mask__shop__orders__card', 'column mask', 'column shop.orders.card', 'ALTER TABLE shop.orders ALTER COLUMN card DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__card'),
  ('veil.mask__shop__orders__email', 'column mask', 'column shop.orders.email', 'ALTER TABLE shop.orders ALTER COLUMN email DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__email'),
  ('veil.mask__shop__orders__note', 'column mask', 'column shop.orders.note', 'ALTER TABLE shop.orders ALTER COLUMN note DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__note'),
  ('veil.mask__shop__orders__paid_at', 'column mask', 'column shop.orders.paid_at', 'ALTER TABLE shop.orders ALTER COLUMN paid_at DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__paid_at'),
  ('veil.mask__shop__orders__phone', 'column mask', 'column shop.orders.phone', 'ALTER TABLE shop.orders ALTER COLUMN phone DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__phone'),
  ('veil.mask__shop__orders__placed_at', 'column mask', 'column shop.orders.placed_at', 'ALTER TABLE shop.orders ALTER COLUMN placed_at DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__placed_at'),
  ('veil.mask__shop__orders__placed_on', 'column mask', 'column shop.orders.placed_on', 'ALTER TABLE shop.orders ALTER COLUMN placed_on DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__placed_on'),
  ('veil.mask__shop__orders__qty', 'column mask', 'column shop.orders.qty', 'ALTER TABLE shop.orders ALTER COLUMN qty DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__qty'),
  ('veil.mask__shop__orders__score', 'column mask', 'column shop.orders.score', 'ALTER TABLE shop.orders ALTER COLUMN score DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__score'),
  ('veil.mask__shop__orders__total', 'column mask', 'column shop.orders.total', 'ALTER TABLE shop.orders ALTER COLUMN total DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__total'),
  ('veil.mask__shop__orders__vip', 'column mask', 'column shop.orders.vip', 'ALTER TABLE shop.orders ALTER COLUMN vip DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__vip'),
  ('veil.mask__shop__refunds__reason', 'column mask', 'column shop.refunds.reason', 'ALTER TABLE shop.refunds ALTER COLUMN reason DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__refunds__reason'),
  ('veil.rows__shop__orders', 'row filter', 'table shop.orders', 'ALTER TABLE shop.orders DROP ROW FILTER', 'DROP FUNCTION IF EXISTS veil.rows__shop__orders'),
  ('veil.rows__shop__refunds', 'row filter', 'table shop.refunds', 'ALTER TABLE shop.refunds DROP ROW FILTER', 'DROP FUNCTION IF EXISTS veil.rows__shop__refunds')
) AS s(object_name, object_kind, target, detach_sql, drop_sql)
ON t.object_name = s.object_name
WHEN MATCHED AND (
  t.object_kind IS DISTINCT FROM s.object_kind
  OR t.target IS DISTINCT FROM s.target
  OR t.detach_sql IS DISTINCT FROM s.detach_sql
  OR t.drop_sql IS DISTINCT FROM s.drop_sql
) THEN UPDATE SET
  t.object_kind = s.object_kind,
  t.target = s.target,
  t.detach_sql = s.detach_sql,
  t.drop_sql = s.drop_sql
WHEN NOT MATCHED THEN INSERT (object_name, object_kind, target, detach_sql, drop_sql) VALUES (s.object_name, s.object_kind, s.target, s.detach_sql, s.drop_sql);

-- 8. Remove the masks and filters that earlier scripts attached and this one does not ------------
BEGIN
  DECLARE stmt STRING;
  FOR stale AS
    SELECT object_name AS name,
           CASE
             WHEN target IN (
               'column shop.orders.card',
               'column shop.orders.email',
               'column shop.orders.note',
               'column shop.orders.paid_at',
               'column shop.orders.phone',
               'column shop.orders.placed_at',
               'column shop.orders.placed_on',
               'column shop.orders.qty',
               'column shop.orders.score',
               'column shop.orders.total',
               'column shop.orders.vip',
               'column shop.refunds.reason',
               'table shop.orders',
               'table shop.refunds'
             ) THEN NULL
             ELSE NULLIF(detach_sql, '')
           END AS detach,
           drop_sql AS drop_it
      FROM veil.applied_object
      WHERE object_name NOT IN (
        'veil.mask__shop__orders__card',
        'veil.mask__shop__orders__email',
        'veil.mask__shop__orders__note',
        'veil.mask__shop__orders__paid_at',
        'veil.mask__shop__orders__phone',
        'veil.mask__shop__orders__placed_at',
        'veil.mask__shop__orders__placed_on',
        'veil.mask__shop__orders__qty',
        'veil.mask__shop__orders__score',
        'veil.mask__shop__orders__total',
        'veil.mask__shop__orders__vip',
        'veil.mask__shop__refunds__reason',
        'veil.rows__shop__orders',
        'veil.rows__shop__refunds'
      )
      -- A policy is dropped before the function it names, whatever the names are.
      ORDER BY CASE WHEN object_kind = 'column mask policy' THEN 0 ELSE 1 END, 1
-- veil runtime: clean-up loop, retired objects, auditors

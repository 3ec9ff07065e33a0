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
                 ('shop', 'orders', 'memo'),
                 ('shop', 'orders', 'note'),
                 ('shop', 'orders', 'qty')
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
                 ('shop', 'orders')
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
DELETE FROM veil.project;
DELETE FROM veil.project_purpose;
DELETE FROM veil.project_member;
DELETE FROM veil.project_source;
MERGE INTO veil.user_attribute AS t
USING (VALUES
  ('ana', 'region', 'EU')
) AS s(principal, attribute_name, attribute_value)
ON t.principal = s.principal AND t.attribute_name = s.attribute_name AND t.attribute_value = s.attribute_value
WHEN NOT MATCHED THEN INSERT (principal, attribute_name, attribute_value) VALUES (s.principal, s.attribute_name, s.attribute_value)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
MERGE INTO veil.user_group AS t
USING (VALUES
  ('ana', 'analysts')
) AS s(principal, group_name)
ON t.principal = s.principal AND t.group_name = s.group_name
WHEN NOT MATCHED THEN INSERT (principal, group_name) VALUES (s.principal, s.group_name)
WHEN NOT MATCHED BY SOURCE THEN DELETE;

-- veil runtime: routines

-- 5. Column masks: one function per masked column ------------------------------------------------

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__memo(memo STRING, qty INT)
RETURNS STRING
COMMENT 'veil: masks shop.orders.memo'
RETURN CAST(
  CASE
    WHEN NOT COALESCE((qty > 100), TRUE) THEN memo
    WHEN arrays_overlap(veil.active_purposes('shop.orders', current_user()), array('Fraud')) THEN memo
    ELSE CAST(NULL AS STRING)
  END AS STRING
);
ALTER TABLE shop.orders ALTER COLUMN memo SET MASK veil.mask__shop__orders__memo USING COLUMNS (qty);

CREATE OR REPLACE FUNCTION veil.mask__shop__orders__note(note STRING, region STRING)
RETURNS STRING
COMMENT 'veil: masks shop.orders.note'
RETURN CAST(
  CASE
    WHEN NOT COALESCE((region = 'EU'), TRUE) THEN note
    WHEN arrays_overlap(veil.active_purposes('shop.orders', current_user()), array('Fraud')) THEN note
    ELSE CAST(NULL AS STRING)
  END AS STRING
);
ALTER TABLE shop.orders ALTER COLUMN note SET MASK veil.mask__shop__orders__note USING COLUMNS (region);

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

-- 6. Row filters: one function per table with row rules, AND-ing them ----------------------------

CREATE OR REPLACE FUNCTION veil.rows__shop__orders(qty INT, region STRING)
RETURNS BOOLEAN
COMMENT 'veil: rows of shop.orders'
RETURN (
  arrays_overlap(veil.active_purposes('shop.orders', current_user()), array('Fraud'))
  OR COALESCE(
    (
      (
        CASE
          WHEN NOT EXISTS (SELECT ua.attribute_value FROM veil.user_attribute ua WHERE UPPER(ua.principal) = UPPER(current_user()) AND ua.attribute_name = 'region') THEN FALSE
          WHEN region IS NULL THEN NULL
          ELSE region IN (SELECT ua.attribute_value FROM veil.user_attribute ua WHERE UPPER(ua.principal) = UPPER(current_user()) AND ua.attribute_name = 'region')
        END
      )
      AND (qty < 1000)
    ),
    FALSE
  )
);
ALTER TABLE shop.orders SET ROW FILTER veil.rows__shop__orders ON (qty, region);

-- 7. What this script attached, so that a newer script can remove what it no longer needs ---------
MERGE INTO veil.applied_object AS t
USING (VALUES
  ('veil.mask__shop__orders__memo', 'column mask', 'column shop.orders.memo', 'ALTER TABLE shop.orders ALTER COLUMN memo DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__memo'),
  ('veil.mask__shop__orders__note', 'column mask', 'column shop.orders.note', 'ALTER TABLE shop.orders ALTER COLUMN note DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__note'),
  ('veil.mask__shop__orders__qty', 'column mask', 'column shop.orders.qty', 'ALTER TABLE shop.orders ALTER COLUMN qty DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__shop__orders__qty'),
  ('veil.rows__shop__orders', 'row filter', 'table shop.orders', 'ALTER TABLE shop.orders DROP ROW FILTER', 'DROP FUNCTION IF EXISTS veil.rows__shop__orders')
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
               'column shop.orders.memo',
               'column shop.orders.note',
               'column shop.orders.qty',
               'table shop.orders'
             ) THEN NULL
             ELSE NULLIF(detach_sql, '')
           END AS detach,
           drop_sql AS drop_it
      FROM veil.applied_object
      WHERE object_name NOT IN (
        'veil.mask__shop__orders__memo',
        'veil.mask__shop__orders__note',
        'veil.mask__shop__orders__qty',
        'veil.rows__shop__orders'
      )
      -- A policy is dropped before the function it names, whatever the names are.
      ORDER BY CASE WHEN object_kind = 'column mask policy' THEN 0 ELSE 1 END, 1
-- veil runtime: clean-up loop, retired objects, auditors

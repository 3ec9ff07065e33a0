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
                 ('app', 'people', 'age'),
                 ('app', 'people', 'born'),
                 ('app', 'people', 'name')
               ) AS v(schema_name, table_name, column_name)
                 ON lower(m.schema_name) = v.schema_name AND lower(m.table_name) = v.table_name AND lower(m.column_name) = v.column_name
               WHERE lower(m.catalog_name) = lower(current_catalog())
                 AND NOT (lower(m.mask_catalog) = lower(current_catalog()) AND lower(m.mask_schema) = 'veil' AND startswith(lower(m.mask_name), 'mask__')));
  IF found <> '' THEN
    SET veil_error = map('errorMessage', concat('veil: ', found, ' has a column mask that veil did not create on a column that veil masks (see information_schema.column_masks); veil would replace it: drop it, or express it in the repository, then run the script again (nothing was changed)'));
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
DELETE FROM veil.user_attribute;
DELETE FROM veil.user_group;

-- veil runtime: routines

-- 5. Column masks: one function per masked column ------------------------------------------------

CREATE OR REPLACE FUNCTION veil.mask__app__people__age(age INT)
RETURNS INT
COMMENT 'veil: masks app.people.age'
RETURN CAST(CAST(NULL AS INT) AS INT);
ALTER TABLE app.people ALTER COLUMN age SET MASK veil.mask__app__people__age;

CREATE OR REPLACE FUNCTION veil.mask__app__people__born(born DATE)
RETURNS DATE
COMMENT 'veil: masks app.people.born'
RETURN CAST(CAST(NULL AS DATE) AS DATE);
ALTER TABLE app.people ALTER COLUMN born SET MASK veil.mask__app__people__born;

CREATE OR REPLACE FUNCTION veil.mask__app__people__name(name STRING)
RETURNS STRING
COMMENT 'veil: masks app.people.name'
RETURN CAST(
  (
    CASE
      WHEN LENGTH(name) > 1 THEN LEFT(name, 1) || REPEAT('*', LENGTH(name) - 1)
      ELSE REPEAT('*', LENGTH(name))
    END
  ) AS STRING
);
ALTER TABLE app.people ALTER COLUMN name SET MASK veil.mask__app__people__name;

-- 6. Row filters: one function per table with row rules, AND-ing them ----------------------------

-- 7. What this script attached, so that a newer script can remove what it no longer needs ---------
MERGE INTO veil.applied_object AS t
USING (VALUES
  ('veil.mask__app__people__age', 'column mask', 'column app.people.age', 'ALTER TABLE app.people ALTER COLUMN age DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__app__people__age'),
  ('veil.mask__app__people__born', 'column mask', 'column app.people.born', 'ALTER TABLE app.people ALTER COLUMN born DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__app__people__born'),
  ('veil.mask__app__people__name', 'column mask', 'column app.people.name', 'ALTER TABLE app.people ALTER COLUMN name DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__app__people__name')
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
               'column app.people.age',
               'column app.people.born',
               'column app.people.name'
             ) THEN NULL
             ELSE NULLIF(detach_sql, '')
           END AS detach,
           drop_sql AS drop_it
      FROM veil.applied_object
      WHERE object_name NOT IN (
        'veil.mask__app__people__age',
        'veil.mask__app__people__born',
        'veil.mask__app__people__name'
      )
      -- A policy is dropped before the function it names, whatever the names are.
      ORDER BY CASE WHEN object_kind = 'column mask policy' THEN 0 ELSE 1 END, 1
-- veil runtime: clean-up loop, retired objects, auditors

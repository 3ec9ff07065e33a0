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
                 ('o\'brien"; drop table x; --', 't$1', 'back\\slash'),
                 ('o\'brien"; drop table x; --', 't$1', 'col"; delete from y; --'),
                 ('o\'brien"; drop table x; --', 't$1', 'naïve ünïcödé')
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
                 ('o\'brien"; drop table x; --', 't$1')
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
  ('p\'; --', NULL)
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
  ('p\'; --', 'O\'Brien"; DROP TABLE x; --', FALSE, 'pending', NULL, NULL, NULL)
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
  ('p\'; --', 'u\'"; --')
) AS s(project_name, principal)
ON t.project_name = s.project_name AND t.principal = s.principal
WHEN NOT MATCHED THEN INSERT (project_name, principal) VALUES (s.project_name, s.principal)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
MERGE INTO veil.project_source AS t
USING (VALUES
  ('p\'; --', '"O\'Brien""; DROP TABLE x; --".t$1')
) AS s(project_name, source_table)
ON t.project_name = s.project_name AND t.source_table = s.source_table
WHEN NOT MATCHED THEN INSERT (project_name, source_table) VALUES (s.project_name, s.source_table)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
DELETE FROM veil.user_attribute;
DELETE FROM veil.user_group;

-- veil runtime: routines

-- 5. Column masks: one function per masked column ------------------------------------------------

CREATE OR REPLACE FUNCTION veil.mask__o_brien_drop_table_x___t_1__back_slash_a2139434(arg1 STRING)
RETURNS STRING
COMMENT 'veil: masks O\'Brien"; DROP TABLE x; --.t$1.back\\slash'
RETURN CAST(
  LEFT(
    sha2((SELECT LEFT(sha2(k.key_hex || ':"O\'Brien""; DROP TABLE x; --".t$1', 256), 32) FROM veil.hash_key AS k) || arg1, 256),
    30
  ) AS STRING
);
ALTER TABLE `O'Brien"; DROP TABLE x; --`.`t$1` ALTER COLUMN `back\slash` SET MASK veil.mask__o_brien_drop_table_x___t_1__back_slash_a2139434;

CREATE OR REPLACE FUNCTION veil.mask__o_brien_drop_table_x___t_1__col_delete_from_y__d439526e(arg1 STRING)
RETURNS STRING
COMMENT 'veil: masks O\'Brien"; DROP TABLE x; --.t$1.col"; DELETE FROM y; --'
RETURN CAST(
  CASE
    WHEN arrays_overlap(veil.active_purposes('"O\'Brien""; DROP TABLE x; --".t$1', current_user()), array('O\'Brien"; DROP TABLE x; --')) THEN arg1
    ELSE CAST('\'; DROP TABLE z; -- $$ $veil$ \\ \n' AS STRING)
  END AS STRING
);
ALTER TABLE `O'Brien"; DROP TABLE x; --`.`t$1` ALTER COLUMN `col"; DELETE FROM y; --` SET MASK veil.mask__o_brien_drop_table_x___t_1__col_delete_from_y__d439526e;

CREATE OR REPLACE FUNCTION veil.mask__o_brien_drop_table_x___t_1__na_ve_n_c_d__3ebe5523(arg1 STRING)
RETURNS STRING
COMMENT 'veil: masks O\'Brien"; DROP TABLE x; --.t$1.naïve ünïcödé'
RETURN CAST(
  CASE
    WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'g\'; DROP ROLE x; --') THEN arg1
    ELSE regexp_replace(arg1, '\'', '\\\\\'')
  END AS STRING
);
ALTER TABLE `O'Brien"; DROP TABLE x; --`.`t$1` ALTER COLUMN `naïve ünïcödé` SET MASK veil.mask__o_brien_drop_table_x___t_1__na_ve_n_c_d__3ebe5523;

-- 6. Row filters: one function per table with row rules, AND-ing them ----------------------------

CREATE OR REPLACE FUNCTION veil.rows__o_brien_drop_table_x___t_1_3c345749(arg1 STRING)
RETURNS BOOLEAN
COMMENT 'veil: rows of O\'Brien"; DROP TABLE x; --.t$1'
RETURN (
  (UPPER(current_user()) = UPPER('u\'"; --'))
  OR COALESCE((arg1 <> 'x\'); --'), FALSE)
);
ALTER TABLE `O'Brien"; DROP TABLE x; --`.`t$1` SET ROW FILTER veil.rows__o_brien_drop_table_x___t_1_3c345749 ON (`col"; DELETE FROM y; --`);

-- 7. What this script attached, so that a newer script can remove what it no longer needs ---------
MERGE INTO veil.applied_object AS t
USING (VALUES
  ('veil.mask__o_brien_drop_table_x___t_1__back_slash_a2139434', 'column mask', 'column O\'Brien"; DROP TABLE x; --.t$1.back\\slash', 'ALTER TABLE `O\'Brien"; DROP TABLE x; --`.`t$1` ALTER COLUMN `back\\slash` DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__o_brien_drop_table_x___t_1__back_slash_a2139434'),
  ('veil.mask__o_brien_drop_table_x___t_1__col_delete_from_y__d439526e', 'column mask', 'column O\'Brien"; DROP TABLE x; --.t$1.col"; DELETE FROM y; --', 'ALTER TABLE `O\'Brien"; DROP TABLE x; --`.`t$1` ALTER COLUMN `col"; DELETE FROM y; --` DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__o_brien_drop_table_x___t_1__col_delete_from_y__d439526e'),
  ('veil.mask__o_brien_drop_table_x___t_1__na_ve_n_c_d__3ebe5523', 'column mask', 'column O\'Brien"; DROP TABLE x; --.t$1.naïve ünïcödé', 'ALTER TABLE `O\'Brien"; DROP TABLE x; --`.`t$1` ALTER COLUMN `naïve ünïcödé` DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__o_brien_drop_table_x___t_1__na_ve_n_c_d__3ebe5523'),
  ('veil.rows__o_brien_drop_table_x___t_1_3c345749', 'row filter', 'table O\'Brien"; DROP TABLE x; --.t$1', 'ALTER TABLE `O\'Brien"; DROP TABLE x; --`.`t$1` DROP ROW FILTER', 'DROP FUNCTION IF EXISTS veil.rows__o_brien_drop_table_x___t_1_3c345749')
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
               'column O\'Brien"; DROP TABLE x; --.t$1.back\\slash',
               'column O\'Brien"; DROP TABLE x; --.t$1.col"; DELETE FROM y; --',
               'column O\'Brien"; DROP TABLE x; --.t$1.naïve ünïcödé',
               'table O\'Brien"; DROP TABLE x; --.t$1'
             ) THEN NULL
             ELSE NULLIF(detach_sql, '')
           END AS detach,
           drop_sql AS drop_it
      FROM veil.applied_object
      WHERE object_name NOT IN (
        'veil.mask__o_brien_drop_table_x___t_1__back_slash_a2139434',
        'veil.mask__o_brien_drop_table_x___t_1__col_delete_from_y__d439526e',
        'veil.mask__o_brien_drop_table_x___t_1__na_ve_n_c_d__3ebe5523',
        'veil.rows__o_brien_drop_table_x___t_1_3c345749'
      )
      -- A policy is dropped before the function it names, whatever the names are.
      ORDER BY CASE WHEN object_kind = 'column mask policy' THEN 0 ELSE 1 END, 1
-- veil runtime: clean-up loop, retired objects, auditors

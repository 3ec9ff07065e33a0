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
                 ('app', 't', 'secret')
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
MERGE INTO veil.project AS t
USING (VALUES
  ('pa', NULL),
  ('pb', NULL),
  ('pc', NULL),
  ('pd', NULL)
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
  ('pa', 'A', TRUE, 'approved', 'ap', '2026-11-20T10:00:00Z', 'I will use it for A only.'),
  ('pb', 'B', FALSE, 'stale', 'ap', '2026-11-20T10:00:00Z', NULL),
  ('pc', 'C', FALSE, 'pending', NULL, NULL, NULL),
  ('pd', 'D', FALSE, 'revoked', NULL, NULL, NULL)
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
  ('pa', 'u1'),
  ('pb', 'u1'),
  ('pb', 'u2'),
  ('pc', 'u1'),
  ('pd', 'u1')
) AS s(project_name, principal)
ON t.project_name = s.project_name AND t.principal = s.principal
WHEN NOT MATCHED THEN INSERT (project_name, principal) VALUES (s.project_name, s.principal)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
MERGE INTO veil.project_source AS t
USING (VALUES
  ('pa', 'app.t'),
  ('pb', 'app.t'),
  ('pc', 'app.t'),
  ('pd', 'app.t')
) AS s(project_name, source_table)
ON t.project_name = s.project_name AND t.source_table = s.source_table
WHEN NOT MATCHED THEN INSERT (project_name, source_table) VALUES (s.project_name, s.source_table)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
DELETE FROM veil.user_attribute;
DELETE FROM veil.user_group;

-- veil runtime: routines

-- 5. Column masks: one function per masked column ------------------------------------------------

CREATE OR REPLACE FUNCTION veil.mask__app__t__secret(secret STRING)
RETURNS STRING
COMMENT 'veil: masks app.t.secret'
RETURN SELECT CAST(
  CASE
    WHEN (
      arrays_overlap(veil_lookup.veil_purposes, array('A'))
      OR arrays_overlap(veil_lookup.veil_purposes, array('B'))
      OR arrays_overlap(veil_lookup.veil_purposes, array('C'))
      OR arrays_overlap(veil_lookup.veil_purposes, array('D'))
    ) THEN secret
    ELSE CAST(NULL AS STRING)
  END AS STRING
)
FROM (SELECT veil.active_purposes('app.t', current_user()) AS veil_purposes) AS veil_lookup;
ALTER TABLE app.t ALTER COLUMN secret SET MASK veil.mask__app__t__secret;

-- 6. Row filters: one function per table with row rules, AND-ing them ----------------------------

-- 7. What this script attached, so that a newer script can remove what it no longer needs ---------
MERGE INTO veil.applied_object AS t
USING (VALUES
  ('veil.mask__app__t__secret', 'column mask', 'column app.t.secret', 'ALTER TABLE app.t ALTER COLUMN secret DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__app__t__secret')
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
               'column app.t.secret'
             ) THEN NULL
             ELSE NULLIF(detach_sql, '')
           END AS detach,
           drop_sql AS drop_it
      FROM veil.applied_object
      WHERE object_name NOT IN (
        'veil.mask__app__t__secret'
      )
      -- A policy is dropped before the function it names, whatever the names are.
      ORDER BY CASE WHEN object_kind = 'column mask policy' THEN 0 ELSE 1 END, 1
-- veil runtime: clean-up loop, retired objects, auditors

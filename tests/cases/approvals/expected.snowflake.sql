-- veil runtime: header

-- 0. Pre-flight: checks, before anything changes, that the script can run to the end and replaces
-- no protection veil did not create. Run the script so that the first error stops it (SnowSQL:
-- `-o exit_on_error=true`; Snowsight "Run All" stops at the first error).
-- One row per protected table: the table, whether veil filters its rows, the columns it masks
-- (a JSON array, as Snowflake stores the names).
EXECUTE IMMEDIATE $$
DECLARE
  found INTEGER DEFAULT 0;
  tbl VARCHAR DEFAULT '';
  rows_too BOOLEAN DEFAULT FALSE;
  masked VARCHAR DEFAULT '[]';
  no_database EXCEPTION (-20003, 'veil: no current database: USE DATABASE <the database of the protected tables>, then run the script again (nothing was changed)');
  foreign_policy EXCEPTION (-20004, 'veil: a table that veil protects has a masking or row access policy that veil did not create, on a column veil masks or on its rows; veil would replace or outrank it: detach it, or express it in the repository, then run the script again (nothing was changed). Find it with SELECT * FROM TABLE(INFORMATION_SCHEMA.POLICY_REFERENCES(REF_ENTITY_NAME => ''<table>'', REF_ENTITY_DOMAIN => ''table'')) for the tables of this block');
  tables_1 CURSOR FOR SELECT COLUMN1 AS TBL, COLUMN2 AS ROWS_TOO, COLUMN3 AS MASKED FROM VALUES
    ('APP.T', FALSE, '["SECRET"]');
BEGIN
  IF (CURRENT_DATABASE() IS NULL) THEN
    RAISE no_database;
  END IF;
  FOR c IN tables_1 DO
    tbl := c.TBL;
    rows_too := c.ROWS_TOO;
    masked := c.MASKED;
    SELECT COUNT(*) INTO :found
      FROM TABLE(INFORMATION_SCHEMA.POLICY_REFERENCES(REF_ENTITY_NAME => :tbl, REF_ENTITY_DOMAIN => 'table'))
      WHERE NOT (POLICY_DB = CURRENT_DATABASE() AND POLICY_SCHEMA = 'VEIL' AND (STARTSWITH(POLICY_NAME, 'MASK__') OR STARTSWITH(POLICY_NAME, 'ROWS__')))
        AND ((:rows_too AND POLICY_KIND = 'ROW_ACCESS_POLICY') OR (POLICY_KIND = 'MASKING_POLICY' AND ARRAY_CONTAINS(REF_COLUMN_NAME::VARIANT, PARSE_JSON(:masked))));
    IF (found > 0) THEN
      RAISE foreign_policy;
    END IF;
  END FOR;
  RETURN 'veil: pre-flight passed';
END;
$$;

-- veil runtime: governance schema

-- 2. Governance rows: exactly those of the repository --------------------------------------------
MERGE INTO VEIL.PROJECT t
USING (SELECT COLUMN1 AS PROJECT_NAME, COLUMN2 AS DOCUMENTATION FROM VALUES
  ('pa', NULL),
  ('pb', NULL),
  ('pc', NULL),
  ('pd', NULL)
) s
ON t.PROJECT_NAME = s.PROJECT_NAME
WHEN MATCHED AND (
  t.DOCUMENTATION IS DISTINCT FROM s.DOCUMENTATION
) THEN UPDATE SET
  t.DOCUMENTATION = s.DOCUMENTATION
WHEN NOT MATCHED THEN INSERT (PROJECT_NAME, DOCUMENTATION) VALUES (s.PROJECT_NAME, s.DOCUMENTATION);
DELETE FROM VEIL.PROJECT WHERE PROJECT_NAME NOT IN (
  'pa',
  'pb',
  'pc',
  'pd'
);
MERGE INTO VEIL.PROJECT_PURPOSE t
USING (SELECT COLUMN1 AS PROJECT_NAME, COLUMN2 AS PURPOSE_NAME, COLUMN3 AS APPROVED, COLUMN4 AS STATE, COLUMN5 AS APPROVED_BY, COLUMN6 AS APPROVED_AT, COLUMN7 AS ACKNOWLEDGEMENT FROM VALUES
  ('pa', 'A', TRUE, 'approved', 'ap', '2026-11-20T10:00:00Z', 'I will use it for A only.'),
  ('pb', 'B', FALSE, 'stale', 'ap', '2026-11-20T10:00:00Z', NULL),
  ('pc', 'C', FALSE, 'pending', NULL, NULL, NULL),
  ('pd', 'D', FALSE, 'revoked', NULL, NULL, NULL)
) s
ON t.PROJECT_NAME = s.PROJECT_NAME AND t.PURPOSE_NAME = s.PURPOSE_NAME
WHEN MATCHED AND (
  t.APPROVED IS DISTINCT FROM s.APPROVED
  OR t.STATE IS DISTINCT FROM s.STATE
  OR t.APPROVED_BY IS DISTINCT FROM s.APPROVED_BY
  OR t.APPROVED_AT IS DISTINCT FROM s.APPROVED_AT
  OR t.ACKNOWLEDGEMENT IS DISTINCT FROM s.ACKNOWLEDGEMENT
) THEN UPDATE SET
  t.APPROVED = s.APPROVED,
  t.STATE = s.STATE,
  t.APPROVED_BY = s.APPROVED_BY,
  t.APPROVED_AT = s.APPROVED_AT,
  t.ACKNOWLEDGEMENT = s.ACKNOWLEDGEMENT
WHEN NOT MATCHED THEN INSERT (PROJECT_NAME, PURPOSE_NAME, APPROVED, STATE, APPROVED_BY, APPROVED_AT, ACKNOWLEDGEMENT) VALUES (s.PROJECT_NAME, s.PURPOSE_NAME, s.APPROVED, s.STATE, s.APPROVED_BY, s.APPROVED_AT, s.ACKNOWLEDGEMENT);
DELETE FROM VEIL.PROJECT_PURPOSE WHERE (PROJECT_NAME, PURPOSE_NAME) NOT IN (
  ('pa', 'A'),
  ('pb', 'B'),
  ('pc', 'C'),
  ('pd', 'D')
);
MERGE INTO VEIL.PROJECT_MEMBER t
USING (SELECT COLUMN1 AS PROJECT_NAME, COLUMN2 AS PRINCIPAL FROM VALUES
  ('pa', 'u1'),
  ('pb', 'u1'),
  ('pb', 'u2'),
  ('pc', 'u1'),
  ('pd', 'u1')
) s
ON t.PROJECT_NAME = s.PROJECT_NAME AND t.PRINCIPAL = s.PRINCIPAL
WHEN NOT MATCHED THEN INSERT (PROJECT_NAME, PRINCIPAL) VALUES (s.PROJECT_NAME, s.PRINCIPAL);
DELETE FROM VEIL.PROJECT_MEMBER WHERE (PROJECT_NAME, PRINCIPAL) NOT IN (
  ('pa', 'u1'),
  ('pb', 'u1'),
  ('pb', 'u2'),
  ('pc', 'u1'),
  ('pd', 'u1')
);
MERGE INTO VEIL.PROJECT_SOURCE t
USING (SELECT COLUMN1 AS PROJECT_NAME, COLUMN2 AS SOURCE_TABLE FROM VALUES
  ('pa', 'app.t'),
  ('pb', 'app.t'),
  ('pc', 'app.t'),
  ('pd', 'app.t')
) s
ON t.PROJECT_NAME = s.PROJECT_NAME AND t.SOURCE_TABLE = s.SOURCE_TABLE
WHEN NOT MATCHED THEN INSERT (PROJECT_NAME, SOURCE_TABLE) VALUES (s.PROJECT_NAME, s.SOURCE_TABLE);
DELETE FROM VEIL.PROJECT_SOURCE WHERE (PROJECT_NAME, SOURCE_TABLE) NOT IN (
  ('pa', 'app.t'),
  ('pb', 'app.t'),
  ('pc', 'app.t'),
  ('pd', 'app.t')
);
DELETE FROM VEIL.USER_ATTRIBUTE;
DELETE FROM VEIL.USER_GROUP;

-- veil runtime: routines

-- 4. Masking policies: one per masked column ------------------------------------------------------
-- A policy is created with a body that masks everything (NULL; a row access policy: FALSE), then
-- given its body by SET BODY, which also updates a policy an earlier script created, and only then
-- attached: the body is written once, and a policy is never attached before it has it.

CREATE MASKING POLICY IF NOT EXISTS VEIL.MASK__APP__T__SECRET__13478C2B AS (SECRET VARCHAR(64)) RETURNS VARCHAR(64) ->
  CAST(NULL AS VARCHAR(64))
  COMMENT = 'veil: masks app.t.secret';
ALTER MASKING POLICY VEIL.MASK__APP__T__SECRET__13478C2B SET BODY ->
  CAST(
    CASE
      WHEN (
        ARRAYS_OVERLAP(VEIL.ACTIVE_PURPOSES('app.t', CURRENT_USER()), ARRAY_CONSTRUCT('A'))
        OR ARRAYS_OVERLAP(VEIL.ACTIVE_PURPOSES('app.t', CURRENT_USER()), ARRAY_CONSTRUCT('B'))
        OR ARRAYS_OVERLAP(VEIL.ACTIVE_PURPOSES('app.t', CURRENT_USER()), ARRAY_CONSTRUCT('C'))
        OR ARRAYS_OVERLAP(VEIL.ACTIVE_PURPOSES('app.t', CURRENT_USER()), ARRAY_CONSTRUCT('D'))
      ) THEN SECRET
      ELSE CAST(NULL AS VARCHAR(64))
    END AS VARCHAR(64)
  );
ALTER TABLE APP.T MODIFY COLUMN SECRET SET MASKING POLICY VEIL.MASK__APP__T__SECRET__13478C2B FORCE;

-- 5. Row access policies: one per table with row rules, AND-ing them -----------------------------

-- 6. What this script attached, so that a newer script can remove what it no longer needs ---------
MERGE INTO VEIL.APPLIED_OBJECT t
USING (SELECT COLUMN1 AS OBJECT_NAME, COLUMN2 AS OBJECT_KIND, COLUMN3 AS TARGET, COLUMN4 AS DETACH_SQL, COLUMN5 AS DROP_SQL FROM VALUES
  ('VEIL.MASK__APP__T__SECRET__13478C2B', 'masking policy', 'column app.t.secret', 'ALTER TABLE APP.T MODIFY COLUMN SECRET UNSET MASKING POLICY', 'DROP MASKING POLICY VEIL.MASK__APP__T__SECRET__13478C2B')
) s
ON t.OBJECT_NAME = s.OBJECT_NAME
WHEN MATCHED AND (
  t.OBJECT_KIND IS DISTINCT FROM s.OBJECT_KIND
  OR t.TARGET IS DISTINCT FROM s.TARGET
  OR t.DETACH_SQL IS DISTINCT FROM s.DETACH_SQL
  OR t.DROP_SQL IS DISTINCT FROM s.DROP_SQL
) THEN UPDATE SET
  t.OBJECT_KIND = s.OBJECT_KIND,
  t.TARGET = s.TARGET,
  t.DETACH_SQL = s.DETACH_SQL,
  t.DROP_SQL = s.DROP_SQL
WHEN NOT MATCHED THEN INSERT (OBJECT_NAME, OBJECT_KIND, TARGET, DETACH_SQL, DROP_SQL) VALUES (s.OBJECT_NAME, s.OBJECT_KIND, s.TARGET, s.DETACH_SQL, s.DROP_SQL);

-- 7. Remove the policies that earlier scripts attached and this one does not ----------------------
EXECUTE IMMEDIATE $$
DECLARE
  report VARCHAR DEFAULT '';
  obj_name VARCHAR DEFAULT '';
  stmt VARCHAR DEFAULT '';
  stale CURSOR FOR
    WITH marked AS (
      SELECT OBJECT_NAME AS OBJECT_NAME, TARGET AS TARGET, DETACH_SQL AS DETACH_SQL, DROP_SQL AS DROP_SQL,
             OBJECT_NAME IN (
               'VEIL.MASK__APP__T__SECRET__13478C2B'
             ) AS IS_CURRENT
        FROM VEIL.APPLIED_OBJECT
    )
    SELECT m.OBJECT_NAME,
           IFF(m.TARGET IN (SELECT c.TARGET FROM marked c WHERE c.IS_CURRENT), NULL, m.DETACH_SQL) AS DETACH,
           m.DROP_SQL AS DROP_IT
      FROM marked m
      WHERE NOT m.IS_CURRENT
      ORDER BY 1;
-- veil runtime: clean-up loop, retired objects, auditors

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
    ('APP.PEOPLE', FALSE, '["AGE", "BORN", "NAME"]');
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
DELETE FROM VEIL.PROJECT;
DELETE FROM VEIL.PROJECT_PURPOSE;
DELETE FROM VEIL.PROJECT_MEMBER;
DELETE FROM VEIL.PROJECT_SOURCE;
DELETE FROM VEIL.USER_ATTRIBUTE;
DELETE FROM VEIL.USER_GROUP;

-- veil runtime: routines

-- 4. Masking policies: one per masked column ------------------------------------------------------
-- A policy is created with a body that masks everything (NULL; a row access policy: FALSE), then
-- given its body by SET BODY, which also updates a policy an earlier script created, and only then
-- attached: the body is written once, and a policy is never attached before it has it.

CREATE MASKING POLICY IF NOT EXISTS VEIL.MASK__APP__PEOPLE__AGE__9EDFFC12 AS (AGE INTEGER) RETURNS INTEGER ->
  CAST(NULL AS INTEGER)
  COMMENT = 'veil: masks app.people.age';
ALTER MASKING POLICY VEIL.MASK__APP__PEOPLE__AGE__9EDFFC12 SET BODY ->
  CAST(CAST(NULL AS INTEGER) AS INTEGER);
ALTER TABLE APP.PEOPLE MODIFY COLUMN AGE SET MASKING POLICY VEIL.MASK__APP__PEOPLE__AGE__9EDFFC12 FORCE;

CREATE MASKING POLICY IF NOT EXISTS VEIL.MASK__APP__PEOPLE__BORN__55EADBFC AS (BORN DATE) RETURNS DATE ->
  CAST(NULL AS DATE)
  COMMENT = 'veil: masks app.people.born';
ALTER MASKING POLICY VEIL.MASK__APP__PEOPLE__BORN__55EADBFC SET BODY ->
  CAST(CAST(NULL AS DATE) AS DATE);
ALTER TABLE APP.PEOPLE MODIFY COLUMN BORN SET MASKING POLICY VEIL.MASK__APP__PEOPLE__BORN__55EADBFC FORCE;

CREATE MASKING POLICY IF NOT EXISTS VEIL.MASK__APP__PEOPLE__NAME__FC1AF806 AS (NAME VARCHAR(100)) RETURNS VARCHAR(100) ->
  CAST(NULL AS VARCHAR(100))
  COMMENT = 'veil: masks app.people.name';
ALTER MASKING POLICY VEIL.MASK__APP__PEOPLE__NAME__FC1AF806 SET BODY ->
  CAST(
    (
      CASE
        WHEN LENGTH(NAME) > 1 THEN LEFT(NAME, 1) || REPEAT('*', LENGTH(NAME) - 1)
        ELSE REPEAT('*', LENGTH(NAME))
      END
    ) AS VARCHAR(100)
  );
ALTER TABLE APP.PEOPLE MODIFY COLUMN NAME SET MASKING POLICY VEIL.MASK__APP__PEOPLE__NAME__FC1AF806 FORCE;

-- 5. Row access policies: one per table with row rules, AND-ing them -----------------------------

-- 6. What this script attached, so that a newer script can remove what it no longer needs ---------
MERGE INTO VEIL.APPLIED_OBJECT t
USING (SELECT COLUMN1 AS OBJECT_NAME, COLUMN2 AS OBJECT_KIND, COLUMN3 AS TARGET, COLUMN4 AS DETACH_SQL, COLUMN5 AS DROP_SQL FROM VALUES
  ('VEIL.MASK__APP__PEOPLE__AGE__9EDFFC12', 'masking policy', 'column app.people.age', 'ALTER TABLE APP.PEOPLE MODIFY COLUMN AGE UNSET MASKING POLICY', 'DROP MASKING POLICY VEIL.MASK__APP__PEOPLE__AGE__9EDFFC12'),
  ('VEIL.MASK__APP__PEOPLE__BORN__55EADBFC', 'masking policy', 'column app.people.born', 'ALTER TABLE APP.PEOPLE MODIFY COLUMN BORN UNSET MASKING POLICY', 'DROP MASKING POLICY VEIL.MASK__APP__PEOPLE__BORN__55EADBFC'),
  ('VEIL.MASK__APP__PEOPLE__NAME__FC1AF806', 'masking policy', 'column app.people.name', 'ALTER TABLE APP.PEOPLE MODIFY COLUMN NAME UNSET MASKING POLICY', 'DROP MASKING POLICY VEIL.MASK__APP__PEOPLE__NAME__FC1AF806')
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
               'VEIL.MASK__APP__PEOPLE__AGE__9EDFFC12',
               'VEIL.MASK__APP__PEOPLE__BORN__55EADBFC',
               'VEIL.MASK__APP__PEOPLE__NAME__FC1AF806'
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

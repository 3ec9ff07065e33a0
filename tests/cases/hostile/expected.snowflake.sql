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
    ('"O\'Brien""; DROP TABLE x; --".T$1', TRUE, '["back\\\\slash", "col\\"; DELETE FROM y; --", "naïve ünïcödé"]');
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
  ('p\'; --', NULL)
) s
ON t.PROJECT_NAME = s.PROJECT_NAME
WHEN MATCHED AND (
  t.DOCUMENTATION IS DISTINCT FROM s.DOCUMENTATION
) THEN UPDATE SET
  t.DOCUMENTATION = s.DOCUMENTATION
WHEN NOT MATCHED THEN INSERT (PROJECT_NAME, DOCUMENTATION) VALUES (s.PROJECT_NAME, s.DOCUMENTATION);
DELETE FROM VEIL.PROJECT WHERE PROJECT_NAME NOT IN (
  'p\'; --'
);
MERGE INTO VEIL.PROJECT_PURPOSE t
USING (SELECT COLUMN1 AS PROJECT_NAME, COLUMN2 AS PURPOSE_NAME, COLUMN3 AS APPROVED, COLUMN4 AS STATE, COLUMN5 AS APPROVED_BY, COLUMN6 AS APPROVED_AT, COLUMN7 AS ACKNOWLEDGEMENT FROM VALUES
  ('p\'; --', 'O\'Brien"; DROP TABLE x; --', FALSE, 'pending', NULL, NULL, NULL)
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
  ('p\'; --', 'O\'Brien"; DROP TABLE x; --')
);
MERGE INTO VEIL.PROJECT_MEMBER t
USING (SELECT COLUMN1 AS PROJECT_NAME, COLUMN2 AS PRINCIPAL FROM VALUES
  ('p\'; --', 'u\'"; --')
) s
ON t.PROJECT_NAME = s.PROJECT_NAME AND t.PRINCIPAL = s.PRINCIPAL
WHEN NOT MATCHED THEN INSERT (PROJECT_NAME, PRINCIPAL) VALUES (s.PROJECT_NAME, s.PRINCIPAL);
DELETE FROM VEIL.PROJECT_MEMBER WHERE (PROJECT_NAME, PRINCIPAL) NOT IN (
  ('p\'; --', 'u\'"; --')
);
MERGE INTO VEIL.PROJECT_SOURCE t
USING (SELECT COLUMN1 AS PROJECT_NAME, COLUMN2 AS SOURCE_TABLE FROM VALUES
  ('p\'; --', '"O\'Brien""; DROP TABLE x; --".t$1')
) s
ON t.PROJECT_NAME = s.PROJECT_NAME AND t.SOURCE_TABLE = s.SOURCE_TABLE
WHEN NOT MATCHED THEN INSERT (PROJECT_NAME, SOURCE_TABLE) VALUES (s.PROJECT_NAME, s.SOURCE_TABLE);
DELETE FROM VEIL.PROJECT_SOURCE WHERE (PROJECT_NAME, SOURCE_TABLE) NOT IN (
  ('p\'; --', '"O\'Brien""; DROP TABLE x; --".t$1')
);
DELETE FROM VEIL.USER_ATTRIBUTE;
DELETE FROM VEIL.USER_GROUP;

-- veil runtime: routines

-- 4. Masking policies: one per masked column ------------------------------------------------------
-- A policy is created with a body that masks everything (NULL; a row access policy: FALSE), then
-- given its body by SET BODY, which also updates a policy an earlier script created, and only then
-- attached: the body is written once, and a policy is never attached before it has it.

CREATE MASKING POLICY IF NOT EXISTS VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__COL_DELETE_FROM_Y___5AE4AC2A_C82C7F38 AS (ARG1 VARCHAR(40)) RETURNS VARCHAR(40) ->
  CAST(NULL AS VARCHAR(40))
  COMMENT = 'veil: masks O\'Brien"; DROP TABLE x; --.t$1.col"; DELETE FROM y; --' EXEMPT_OTHER_POLICIES = TRUE;
ALTER MASKING POLICY VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__COL_DELETE_FROM_Y___5AE4AC2A_C82C7F38 SET BODY ->
  CAST(
    CASE
      WHEN ARRAYS_OVERLAP(
        VEIL.ACTIVE_PURPOSES('"O\'Brien""; DROP TABLE x; --".t$1', CURRENT_USER()),
        ARRAY_CONSTRUCT('O\'Brien"; DROP TABLE x; --')
      ) THEN ARG1
      ELSE CAST('\'; DROP TABLE z; -- $$ $veil$ \\ \n' AS VARCHAR(40))
    END AS VARCHAR(40)
  );
ALTER TABLE "O'Brien""; DROP TABLE x; --".T$1 MODIFY COLUMN "col""; DELETE FROM y; --" SET MASKING POLICY VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__COL_DELETE_FROM_Y___5AE4AC2A_C82C7F38 FORCE;

CREATE MASKING POLICY IF NOT EXISTS VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__BACK_SLASH__7D20A4D7_B51004A3 AS (ARG1 VARCHAR(30)) RETURNS VARCHAR(30) ->
  CAST(NULL AS VARCHAR(30))
  COMMENT = 'veil: masks O\'Brien"; DROP TABLE x; --.t$1.back\\slash';
ALTER MASKING POLICY VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__BACK_SLASH__7D20A4D7_B51004A3 SET BODY ->
  CAST(
    LEFT(
      SHA2((SELECT LEFT(SHA2(k.KEY_HEX || ':"O\'Brien""; DROP TABLE x; --".t$1', 256), 32) FROM VEIL.HASH_KEY AS k) || ARG1, 256),
      30
    ) AS VARCHAR(30)
  );
ALTER TABLE "O'Brien""; DROP TABLE x; --".T$1 MODIFY COLUMN "back\slash" SET MASKING POLICY VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__BACK_SLASH__7D20A4D7_B51004A3 FORCE;

CREATE MASKING POLICY IF NOT EXISTS VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__NA_VE_N_C_D___506DFDF8_36BB4861 AS (ARG1 VARCHAR) RETURNS VARCHAR ->
  CAST(NULL AS VARCHAR)
  COMMENT = 'veil: masks O\'Brien"; DROP TABLE x; --.t$1.naïve ünïcödé';
ALTER MASKING POLICY VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__NA_VE_N_C_D___506DFDF8_36BB4861 SET BODY ->
  CAST(
    CASE
      WHEN ARRAY_CONTAINS('g\'; DROP ROLE x; --'::VARIANT, VEIL.USER_GROUPS(CURRENT_USER())) THEN ARG1
      ELSE REGEXP_REPLACE(ARG1, '\'', '\\\\\'')
    END AS VARCHAR
  );
ALTER TABLE "O'Brien""; DROP TABLE x; --".T$1 MODIFY COLUMN "naïve ünïcödé" SET MASKING POLICY VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__NA_VE_N_C_D___506DFDF8_36BB4861 FORCE;

-- 5. Row access policies: one per table with row rules, AND-ing them -----------------------------

CREATE ROW ACCESS POLICY IF NOT EXISTS VEIL.ROWS__O_BRIEN_DROP_TABLE_X___T_1__C89DBA81_9D83F136 AS (ARG1 VARCHAR(40)) RETURNS BOOLEAN ->
  FALSE
  COMMENT = 'veil: rows of O\'Brien"; DROP TABLE x; --.t$1';
ALTER ROW ACCESS POLICY VEIL.ROWS__O_BRIEN_DROP_TABLE_X___T_1__C89DBA81_9D83F136 SET BODY ->
  (
    (UPPER(CURRENT_USER()) = UPPER('u\'"; --'))
    OR COALESCE((ARG1 <> 'x\'); --'), FALSE)
  );

-- Each row access policy attached to its table: added where the table has none, swapped in (one
-- ALTER TABLE … DROP …, ADD …) where it has an older one of veil's, refused where it has one veil
-- did not create (Snowflake has no ADD … IF NOT EXISTS, and a table has one row access policy).
-- One row per table: the table, the policy, its name in POLICY_REFERENCES, the columns it takes.
EXECUTE IMMEDIATE $$
DECLARE
  tbl VARCHAR DEFAULT '';
  pol VARCHAR DEFAULT '';
  bare VARCHAR DEFAULT '';
  cols VARCHAR DEFAULT '';
  attached VARCHAR DEFAULT '';
  ours BOOLEAN DEFAULT FALSE;
  current_one BOOLEAN DEFAULT FALSE;
  stmt VARCHAR DEFAULT '';
  foreign_policy EXCEPTION (-20002, 'veil: a table that veil filters already has a row access policy that veil did not create; detach it first (POLICY_REFERENCES of the table shows it)');
  tables_1 CURSOR FOR SELECT COLUMN1 AS TBL, COLUMN2 AS POL, COLUMN3 AS BARE, COLUMN4 AS COLS FROM VALUES
    ('"O\'Brien""; DROP TABLE x; --".T$1', 'VEIL.ROWS__O_BRIEN_DROP_TABLE_X___T_1__C89DBA81_9D83F136', 'ROWS__O_BRIEN_DROP_TABLE_X___T_1__C89DBA81_9D83F136', '"col""; DELETE FROM y; --"');
BEGIN
  FOR r IN tables_1 DO
    tbl := r.TBL;
    pol := r.POL;
    bare := r.BARE;
    cols := r.COLS;
    SELECT COALESCE(MAX('"' || REPLACE(POLICY_DB, '"', '""') || '"."' || REPLACE(POLICY_SCHEMA, '"', '""') || '"."' || REPLACE(POLICY_NAME, '"', '""') || '"'), ''),
           COALESCE(BOOLOR_AGG(POLICY_DB = CURRENT_DATABASE() AND POLICY_SCHEMA = 'VEIL' AND STARTSWITH(POLICY_NAME, 'ROWS__')), FALSE),
           COALESCE(BOOLOR_AGG(POLICY_DB = CURRENT_DATABASE() AND POLICY_SCHEMA = 'VEIL' AND POLICY_NAME = :bare), FALSE)
      INTO :attached, :ours, :current_one
      FROM TABLE(INFORMATION_SCHEMA.POLICY_REFERENCES(REF_ENTITY_NAME => :tbl, REF_ENTITY_DOMAIN => 'table'))
      WHERE POLICY_KIND = 'ROW_ACCESS_POLICY';
    IF (attached = '') THEN
      stmt := 'ALTER TABLE ' || tbl || ' ADD ROW ACCESS POLICY ' || pol || ' ON (' || cols || ')';
      EXECUTE IMMEDIATE :stmt;
    ELSEIF (NOT ours) THEN
      RAISE foreign_policy;
    ELSEIF (NOT current_one) THEN
      stmt := 'ALTER TABLE ' || tbl || ' DROP ROW ACCESS POLICY ' || attached || ', ADD ROW ACCESS POLICY ' || pol || ' ON (' || cols || ')';
      EXECUTE IMMEDIATE :stmt;
    END IF;
  END FOR;
  RETURN 'veil: row access policies attached';
END;
$$;

-- 6. What this script attached, so that a newer script can remove what it no longer needs ---------
MERGE INTO VEIL.APPLIED_OBJECT t
USING (SELECT COLUMN1 AS OBJECT_NAME, COLUMN2 AS OBJECT_KIND, COLUMN3 AS TARGET, COLUMN4 AS DETACH_SQL, COLUMN5 AS DROP_SQL FROM VALUES
  ('VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__BACK_SLASH__7D20A4D7_B51004A3', 'masking policy', 'column O\'Brien"; DROP TABLE x; --.t$1.back\\slash', 'ALTER TABLE "O\'Brien""; DROP TABLE x; --".T$1 MODIFY COLUMN "back\\slash" UNSET MASKING POLICY', 'DROP MASKING POLICY VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__BACK_SLASH__7D20A4D7_B51004A3'),
  ('VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__COL_DELETE_FROM_Y___5AE4AC2A_C82C7F38', 'masking policy', 'column O\'Brien"; DROP TABLE x; --.t$1.col"; DELETE FROM y; --', 'ALTER TABLE "O\'Brien""; DROP TABLE x; --".T$1 MODIFY COLUMN "col""; DELETE FROM y; --" UNSET MASKING POLICY', 'DROP MASKING POLICY VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__COL_DELETE_FROM_Y___5AE4AC2A_C82C7F38'),
  ('VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__NA_VE_N_C_D___506DFDF8_36BB4861', 'masking policy', 'column O\'Brien"; DROP TABLE x; --.t$1.naïve ünïcödé', 'ALTER TABLE "O\'Brien""; DROP TABLE x; --".T$1 MODIFY COLUMN "naïve ünïcödé" UNSET MASKING POLICY', 'DROP MASKING POLICY VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__NA_VE_N_C_D___506DFDF8_36BB4861'),
  ('VEIL.ROWS__O_BRIEN_DROP_TABLE_X___T_1__C89DBA81_9D83F136', 'row access policy', 'table O\'Brien"; DROP TABLE x; --.t$1', 'ALTER TABLE "O\'Brien""; DROP TABLE x; --".T$1 DROP ROW ACCESS POLICY VEIL.ROWS__O_BRIEN_DROP_TABLE_X___T_1__C89DBA81_9D83F136', 'DROP ROW ACCESS POLICY VEIL.ROWS__O_BRIEN_DROP_TABLE_X___T_1__C89DBA81_9D83F136')
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
               'VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__BACK_SLASH__7D20A4D7_B51004A3',
               'VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__COL_DELETE_FROM_Y___5AE4AC2A_C82C7F38',
               'VEIL.MASK__O_BRIEN_DROP_TABLE_X___T_1__NA_VE_N_C_D___506DFDF8_36BB4861',
               'VEIL.ROWS__O_BRIEN_DROP_TABLE_X___T_1__C89DBA81_9D83F136'
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

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
                 ('app', 'people', 'born'),
                 ('app', 'people', 'card'),
                 ('app', 'people', 'email'),
                 ('app', 'people', 'name'),
                 ('app', 'people', 'phone'),
                 ('app', 'people', 'salary')
               ) AS v(schema_name, table_name, column_name)
                 ON lower(m.schema_name) = v.schema_name AND lower(m.table_name) = v.table_name AND lower(m.column_name) = v.column_name
               WHERE lower(m.catalog_name) = lower(current_catalog())
                 AND NOT (lower(m.mask_catalog) = lower(current_catalog()) AND lower(m.mask_schema) = 'veil' AND startswith(lower(m.mask_name), 'mask__')));
  IF found <> '' THEN
    SET veil_error = map('errorMessage', concat('veil: ', found, ' has a column mask that veil did not create on a column that veil masks (see information_schema.column_masks); veil would replace it: drop it, or express it in the repository, then run the script again (nothing was changed)'));
    SIGNAL USER_RAISED_EXCEPTION SET MESSAGE_ARGUMENTS = veil_error;
  END IF;
  -- Native tag policies: the governed tag must exist (a policy matches governed tags only), read
  -- from the system table of governed tags (an account admin enables system tables and grants
  -- SELECT on it: without it this query fails, and nothing was changed either) ...
  IF NOT EXISTS (SELECT 1 FROM system.tags.governed_tags
                 WHERE tag_key = 'veil_class' AND deleted_at IS NULL) THEN
    SIGNAL SQLSTATE '42704' SET MESSAGE_TEXT = 'veil: the governed tag veil_class does not exist (system.tags.governed_tags): an account admin creates it, allowing the values listed in section 5b, then run the script again (nothing was changed)';
  END IF;
  -- ... no table of these catalogs that the repository does not declare has a column tagged with
  -- a value veil masks (veil puts its policies on the tables it declares only) ...
  SET found = (SELECT array_join(array_sort(collect_set(concat_ws('.', t.schema_name, t.table_name))), ', ')
               FROM information_schema.column_tags t
               LEFT JOIN (VALUES
                 ('app', 'people')
               ) AS v(schema_name, table_name)
                 ON lower(t.schema_name) = v.schema_name AND lower(t.table_name) = v.table_name
               WHERE lower(t.catalog_name) = lower(current_catalog()) AND t.tag_name = 'veil_class'
                 AND t.tag_value IN ('contact', 'finance__salary', 'pii', 'pii__card') AND v.table_name IS NULL);
  IF found <> '' THEN
    SET veil_error = map('errorMessage', concat('veil: ', found, ' has a column tagged veil_class (see information_schema.column_tags) but is not in the repository, so no policy of veil masks it: declare the table in the repository and compile again, or unset the tag, then run the script again (nothing was changed)'));
    SIGNAL USER_RAISED_EXCEPTION SET MESSAGE_ARGUMENTS = veil_error;
  END IF;
  -- ... and no column veil masks itself carries the tag (it would have two masks).
  IF EXISTS (SELECT 1 FROM information_schema.column_tags
             WHERE lower(catalog_name) = lower(current_catalog()) AND lower(schema_name) = 'app' AND lower(table_name) = 'people'
               AND lower(column_name) IN ('born', 'card', 'email', 'name', 'phone', 'salary')
               AND tag_name = 'veil_class') THEN
    SIGNAL SQLSTATE '42501' SET MESSAGE_TEXT = 'veil: app.people has a column that veil masks and that carries the tag veil_class (see information_schema.column_tags); with an ABAC policy it would have two masks and every query of it would fail: unset the tag, then run the script again (nothing was changed)';
  END IF;
  VALUES ('veil: pre-flight passed');
END;

-- veil runtime: governance schema

-- 2. Governance rows: exactly those of the repository --------------------------------------------
MERGE INTO veil.project AS t
USING (VALUES
  ('helpdesk', NULL)
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
  ('helpdesk', 'Support', TRUE, 'approved', 'carol', '2026-01-05T00:00:00Z', NULL)
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
  ('helpdesk', 'ann'),
  ('helpdesk', 'bob')
) AS s(project_name, principal)
ON t.project_name = s.project_name AND t.principal = s.principal
WHEN NOT MATCHED THEN INSERT (project_name, principal) VALUES (s.project_name, s.principal)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
MERGE INTO veil.project_source AS t
USING (VALUES
  ('helpdesk', 'app.people')
) AS s(project_name, source_table)
ON t.project_name = s.project_name AND t.source_table = s.source_table
WHEN NOT MATCHED THEN INSERT (project_name, source_table) VALUES (s.project_name, s.source_table)
WHEN NOT MATCHED BY SOURCE THEN DELETE;
DELETE FROM veil.user_attribute;
MERGE INTO veil.user_group AS t
USING (VALUES
  ('ann', 'hr_admins')
) AS s(principal, group_name)
ON t.principal = s.principal AND t.group_name = s.group_name
WHEN NOT MATCHED THEN INSERT (principal, group_name) VALUES (s.principal, s.group_name)
WHEN NOT MATCHED BY SOURCE THEN DELETE;

-- veil runtime: routines

-- 5. Column masks: one function per masked column ------------------------------------------------

CREATE OR REPLACE FUNCTION veil.mask__app__people__born(born DATE)
RETURNS DATE
COMMENT 'veil: masks app.people.born'
RETURN CAST(CAST(NULL AS DATE) AS DATE);
ALTER TABLE app.people ALTER COLUMN born SET MASK veil.mask__app__people__born;

CREATE OR REPLACE FUNCTION veil.mask__app__people__card(card STRING)
RETURNS STRING
COMMENT 'veil: masks app.people.card'
RETURN CAST(
  CASE
    WHEN arrays_overlap(veil.active_purposes('app.people', current_user()), array('Support')) THEN card
    ELSE (
      CASE
        WHEN LENGTH(card) > 4 THEN REPEAT('*', LENGTH(card) - 4) || RIGHT(card, 4)
        ELSE REPEAT('*', LENGTH(card))
      END
    )
  END AS STRING
);
ALTER TABLE app.people ALTER COLUMN card SET MASK veil.mask__app__people__card;

CREATE OR REPLACE FUNCTION veil.mask__app__people__email(email STRING)
RETURNS STRING
COMMENT 'veil: masks app.people.email'
RETURN CAST(
  CASE
    WHEN arrays_overlap(veil.active_purposes('app.people', current_user()), array('Support')) THEN email
    ELSE sha2((SELECT LEFT(sha2(k.key_hex || ':app.people', 256), 32) FROM veil.hash_key AS k) || email, 256)
  END AS STRING
);
ALTER TABLE app.people ALTER COLUMN email SET MASK veil.mask__app__people__email;

CREATE OR REPLACE FUNCTION veil.mask__app__people__name(name STRING)
RETURNS STRING
COMMENT 'veil: masks app.people.name'
RETURN CAST(CAST(NULL AS STRING) AS STRING);
ALTER TABLE app.people ALTER COLUMN name SET MASK veil.mask__app__people__name;

CREATE OR REPLACE FUNCTION veil.mask__app__people__phone(phone STRING)
RETURNS STRING
COMMENT 'veil: masks app.people.phone'
RETURN CAST(
  CASE
    WHEN arrays_overlap(veil.active_purposes('app.people', current_user()), array('Support')) THEN phone
    ELSE sha2((SELECT LEFT(sha2(k.key_hex || ':app.people', 256), 32) FROM veil.hash_key AS k) || phone, 256)
  END AS STRING
);
ALTER TABLE app.people ALTER COLUMN phone SET MASK veil.mask__app__people__phone;

CREATE OR REPLACE FUNCTION veil.mask__app__people__salary(salary DECIMAL(10, 2))
RETURNS DECIMAL(10, 2)
COMMENT 'veil: masks app.people.salary'
RETURN CAST(
  CASE
    WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'hr_admins') THEN salary
    ELSE CAST(ROUND(CAST(salary AS DECIMAL(38, 10)), -3) AS DECIMAL(10, 2))
  END AS DECIMAL(10, 2)
);
ALTER TABLE app.people ALTER COLUMN salary SET MASK veil.mask__app__people__salary;

-- 5b. Native tag policies (veil.toml native_tags): one mask function per `mask tagged`, and on every
-- table of the catalog one ABAC column mask policy per function, matching the columns whose
-- governed tag veil_class has its value. Databricks Runtime 16.4 or later, or serverless compute or
-- a SQL warehouse (docs/targets/databricks.md, "Native tag policies"). An account admin creates the
-- governed tag veil_class first, allowing exactly these values:
--   contact, finance__salary, pii, pii__card

-- tag veil_class = contact
CREATE OR REPLACE FUNCTION veil.mask__tag__contact(val VARIANT, source STRING)
RETURNS VARIANT
COMMENT 'veil: masks the columns tagged veil_class = contact'
RETURN CASE
    WHEN schema_of_variant(val) = 'STRING' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'STRING')
          ELSE sha2(
            LEFT(sha2((SELECT k.key_hex FROM veil.hash_key AS k) || ':' || source, 256), 32) || try_variant_get(val, '$', 'STRING'),
            256
          )
        END AS STRING
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'BIGINT' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'DECIMAL(38, 18)')
          ELSE CAST(NULL AS DECIMAL(38, 18))
        END AS DECIMAL(38, 18)
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) LIKE 'DECIMAL(%' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'DECIMAL(38, 18)')
          ELSE CAST(NULL AS DECIMAL(38, 18))
        END AS DECIMAL(38, 18)
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) IN ('DOUBLE', 'FLOAT') THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'DOUBLE')
          ELSE CAST(NULL AS DOUBLE)
        END AS DOUBLE
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'BOOLEAN' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'BOOLEAN')
          ELSE CAST(NULL AS BOOLEAN)
        END AS BOOLEAN
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'DATE' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'DATE')
          ELSE CAST(NULL AS DATE)
        END AS DATE
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'TIMESTAMP_NTZ' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'TIMESTAMP_NTZ')
          ELSE CAST(NULL AS TIMESTAMP_NTZ)
        END AS TIMESTAMP_NTZ
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'TIMESTAMP' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'TIMESTAMP')
          ELSE CAST(NULL AS TIMESTAMP)
        END AS TIMESTAMP
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'BINARY' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'BINARY')
          ELSE CAST(NULL AS BINARY)
        END AS BINARY
      ) AS VARIANT
    )
    ELSE CAST(NULL AS VARIANT)
  END;

-- tag veil_class = finance__salary
CREATE OR REPLACE FUNCTION veil.mask__tag__finance_salary_b65e531f(val VARIANT, source STRING)
RETURNS VARIANT
COMMENT 'veil: masks the columns tagged veil_class = finance__salary'
RETURN CASE
    WHEN schema_of_variant(val) = 'STRING' THEN CAST(
      CAST(
        CASE
          WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'hr_admins') THEN try_variant_get(val, '$', 'STRING')
          ELSE CAST(NULL AS STRING)
        END AS STRING
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'BIGINT' THEN CAST(
      CAST(
        CASE
          WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'hr_admins') THEN try_variant_get(val, '$', 'DECIMAL(38, 18)')
          ELSE CAST(ROUND(CAST(try_variant_get(val, '$', 'DECIMAL(38, 18)') AS DECIMAL(38, 10)), -3) AS DECIMAL(38, 18))
        END AS DECIMAL(38, 18)
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) LIKE 'DECIMAL(%' THEN CAST(
      CAST(
        CASE
          WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'hr_admins') THEN try_variant_get(val, '$', 'DECIMAL(38, 18)')
          ELSE CAST(ROUND(CAST(try_variant_get(val, '$', 'DECIMAL(38, 18)') AS DECIMAL(38, 10)), -3) AS DECIMAL(38, 18))
        END AS DECIMAL(38, 18)
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) IN ('DOUBLE', 'FLOAT') THEN CAST(
      CAST(
        CASE
          WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'hr_admins') THEN try_variant_get(val, '$', 'DOUBLE')
          ELSE CAST(ROUND(CAST(try_variant_get(val, '$', 'DOUBLE') AS DECIMAL(38, 10)), -3) AS DOUBLE)
        END AS DOUBLE
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'BOOLEAN' THEN CAST(
      CAST(
        CASE
          WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'hr_admins') THEN try_variant_get(val, '$', 'BOOLEAN')
          ELSE CAST(NULL AS BOOLEAN)
        END AS BOOLEAN
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'DATE' THEN CAST(
      CAST(
        CASE
          WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'hr_admins') THEN try_variant_get(val, '$', 'DATE')
          ELSE CAST(NULL AS DATE)
        END AS DATE
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'TIMESTAMP_NTZ' THEN CAST(
      CAST(
        CASE
          WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'hr_admins') THEN try_variant_get(val, '$', 'TIMESTAMP_NTZ')
          ELSE CAST(NULL AS TIMESTAMP_NTZ)
        END AS TIMESTAMP_NTZ
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'TIMESTAMP' THEN CAST(
      CAST(
        CASE
          WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'hr_admins') THEN try_variant_get(val, '$', 'TIMESTAMP')
          ELSE CAST(NULL AS TIMESTAMP)
        END AS TIMESTAMP
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'BINARY' THEN CAST(
      CAST(
        CASE
          WHEN EXISTS (SELECT ug.group_name FROM veil.user_group ug WHERE UPPER(ug.principal) = UPPER(current_user()) AND ug.group_name = 'hr_admins') THEN try_variant_get(val, '$', 'BINARY')
          ELSE CAST(NULL AS BINARY)
        END AS BINARY
      ) AS VARIANT
    )
    ELSE CAST(NULL AS VARIANT)
  END;

-- tag veil_class = pii
CREATE OR REPLACE FUNCTION veil.mask__tag__pii(val VARIANT, source STRING)
RETURNS VARIANT
COMMENT 'veil: masks the columns tagged veil_class = pii'
RETURN CASE
    WHEN schema_of_variant(val) = 'STRING' THEN CAST(CAST(CAST(NULL AS STRING) AS STRING) AS VARIANT)
    WHEN schema_of_variant(val) = 'BIGINT' THEN CAST(CAST(CAST(NULL AS DECIMAL(38, 18)) AS DECIMAL(38, 18)) AS VARIANT)
    WHEN schema_of_variant(val) LIKE 'DECIMAL(%' THEN CAST(CAST(CAST(NULL AS DECIMAL(38, 18)) AS DECIMAL(38, 18)) AS VARIANT)
    WHEN schema_of_variant(val) IN ('DOUBLE', 'FLOAT') THEN CAST(CAST(CAST(NULL AS DOUBLE) AS DOUBLE) AS VARIANT)
    WHEN schema_of_variant(val) = 'BOOLEAN' THEN CAST(CAST(CAST(NULL AS BOOLEAN) AS BOOLEAN) AS VARIANT)
    WHEN schema_of_variant(val) = 'DATE' THEN CAST(CAST(CAST(NULL AS DATE) AS DATE) AS VARIANT)
    WHEN schema_of_variant(val) = 'TIMESTAMP_NTZ' THEN CAST(CAST(CAST(NULL AS TIMESTAMP_NTZ) AS TIMESTAMP_NTZ) AS VARIANT)
    WHEN schema_of_variant(val) = 'TIMESTAMP' THEN CAST(CAST(CAST(NULL AS TIMESTAMP) AS TIMESTAMP) AS VARIANT)
    WHEN schema_of_variant(val) = 'BINARY' THEN CAST(CAST(CAST(NULL AS BINARY) AS BINARY) AS VARIANT)
    ELSE CAST(NULL AS VARIANT)
  END;

-- tag veil_class = pii__card
CREATE OR REPLACE FUNCTION veil.mask__tag__pii_card_ae7b34b7(val VARIANT, source STRING)
RETURNS VARIANT
COMMENT 'veil: masks the columns tagged veil_class = pii__card'
RETURN CASE
    WHEN schema_of_variant(val) = 'STRING' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'STRING')
          ELSE (
            CASE
              WHEN LENGTH(try_variant_get(val, '$', 'STRING')) > 4 THEN REPEAT('*', LENGTH(try_variant_get(val, '$', 'STRING')) - 4) || RIGHT(try_variant_get(val, '$', 'STRING'), 4)
              ELSE REPEAT('*', LENGTH(try_variant_get(val, '$', 'STRING')))
            END
          )
        END AS STRING
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'BIGINT' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'DECIMAL(38, 18)')
          ELSE CAST(NULL AS DECIMAL(38, 18))
        END AS DECIMAL(38, 18)
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) LIKE 'DECIMAL(%' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'DECIMAL(38, 18)')
          ELSE CAST(NULL AS DECIMAL(38, 18))
        END AS DECIMAL(38, 18)
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) IN ('DOUBLE', 'FLOAT') THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'DOUBLE')
          ELSE CAST(NULL AS DOUBLE)
        END AS DOUBLE
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'BOOLEAN' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'BOOLEAN')
          ELSE CAST(NULL AS BOOLEAN)
        END AS BOOLEAN
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'DATE' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'DATE')
          ELSE CAST(NULL AS DATE)
        END AS DATE
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'TIMESTAMP_NTZ' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'TIMESTAMP_NTZ')
          ELSE CAST(NULL AS TIMESTAMP_NTZ)
        END AS TIMESTAMP_NTZ
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'TIMESTAMP' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'TIMESTAMP')
          ELSE CAST(NULL AS TIMESTAMP)
        END AS TIMESTAMP
      ) AS VARIANT
    )
    WHEN schema_of_variant(val) = 'BINARY' THEN CAST(
      CAST(
        CASE
          WHEN arrays_overlap(veil.active_purposes(source, current_user()), array('Support')) THEN try_variant_get(val, '$', 'BINARY')
          ELSE CAST(NULL AS BINARY)
        END AS BINARY
      ) AS VARIANT
    )
    ELSE CAST(NULL AS VARIANT)
  END;

CREATE OR REPLACE POLICY veil_tag__contact ON TABLE app.people
COMMENT 'veil: masks the columns tagged veil_class = contact'
COLUMN MASK veil.mask__tag__contact
TO `account users`
FOR TABLES
MATCH COLUMNS has_tag_value('veil_class', 'contact') AS c
ON COLUMN c
USING COLUMNS ('app.people');

CREATE OR REPLACE POLICY veil_tag__finance_salary_21247eda ON TABLE app.people
COMMENT 'veil: masks the columns tagged veil_class = finance__salary'
COLUMN MASK veil.mask__tag__finance_salary_b65e531f
TO `account users`
FOR TABLES
MATCH COLUMNS has_tag_value('veil_class', 'finance__salary') AS c
ON COLUMN c
USING COLUMNS ('app.people');

CREATE OR REPLACE POLICY veil_tag__pii ON TABLE app.people
COMMENT 'veil: masks the columns tagged veil_class = pii'
COLUMN MASK veil.mask__tag__pii
TO `account users`
FOR TABLES
MATCH COLUMNS has_tag_value('veil_class', 'pii') AS c
ON COLUMN c
USING COLUMNS ('app.people');

CREATE OR REPLACE POLICY veil_tag__pii_card_d81b6fdf ON TABLE app.people
COMMENT 'veil: masks the columns tagged veil_class = pii__card'
COLUMN MASK veil.mask__tag__pii_card_ae7b34b7
TO `account users`
FOR TABLES
MATCH COLUMNS has_tag_value('veil_class', 'pii__card') AS c
ON COLUMN c
USING COLUMNS ('app.people');

-- 6. Row filters: one function per table with row rules, AND-ing them ----------------------------

-- 7. What this script attached, so that a newer script can remove what it no longer needs ---------
MERGE INTO veil.applied_object AS t
USING (VALUES
  ('POLICY veil_tag__contact ON TABLE app.people', 'column mask policy', 'table app.people tag veil_class = contact', '', 'DROP POLICY veil_tag__contact ON TABLE app.people'),
  ('POLICY veil_tag__finance_salary_21247eda ON TABLE app.people', 'column mask policy', 'table app.people tag veil_class = finance__salary', '', 'DROP POLICY veil_tag__finance_salary_21247eda ON TABLE app.people'),
  ('POLICY veil_tag__pii ON TABLE app.people', 'column mask policy', 'table app.people tag veil_class = pii', '', 'DROP POLICY veil_tag__pii ON TABLE app.people'),
  ('POLICY veil_tag__pii_card_d81b6fdf ON TABLE app.people', 'column mask policy', 'table app.people tag veil_class = pii__card', '', 'DROP POLICY veil_tag__pii_card_d81b6fdf ON TABLE app.people'),
  ('veil.mask__app__people__born', 'column mask', 'column app.people.born', 'ALTER TABLE app.people ALTER COLUMN born DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__app__people__born'),
  ('veil.mask__app__people__card', 'column mask', 'column app.people.card', 'ALTER TABLE app.people ALTER COLUMN card DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__app__people__card'),
  ('veil.mask__app__people__email', 'column mask', 'column app.people.email', 'ALTER TABLE app.people ALTER COLUMN email DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__app__people__email'),
  ('veil.mask__app__people__name', 'column mask', 'column app.people.name', 'ALTER TABLE app.people ALTER COLUMN name DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__app__people__name'),
  ('veil.mask__app__people__phone', 'column mask', 'column app.people.phone', 'ALTER TABLE app.people ALTER COLUMN phone DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__app__people__phone'),
  ('veil.mask__app__people__salary', 'column mask', 'column app.people.salary', 'ALTER TABLE app.people ALTER COLUMN salary DROP MASK', 'DROP FUNCTION IF EXISTS veil.mask__app__people__salary'),
  ('veil.mask__tag__contact', 'tag mask function', 'tag veil_class = contact', '', 'DROP FUNCTION IF EXISTS veil.mask__tag__contact'),
  ('veil.mask__tag__finance_salary_b65e531f', 'tag mask function', 'tag veil_class = finance__salary', '', 'DROP FUNCTION IF EXISTS veil.mask__tag__finance_salary_b65e531f'),
  ('veil.mask__tag__pii', 'tag mask function', 'tag veil_class = pii', '', 'DROP FUNCTION IF EXISTS veil.mask__tag__pii'),
  ('veil.mask__tag__pii_card_ae7b34b7', 'tag mask function', 'tag veil_class = pii__card', '', 'DROP FUNCTION IF EXISTS veil.mask__tag__pii_card_ae7b34b7')
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
               'table app.people tag veil_class = contact',
               'table app.people tag veil_class = finance__salary',
               'table app.people tag veil_class = pii',
               'table app.people tag veil_class = pii__card',
               'column app.people.born',
               'column app.people.card',
               'column app.people.email',
               'column app.people.name',
               'column app.people.phone',
               'column app.people.salary',
               'tag veil_class = contact',
               'tag veil_class = finance__salary',
               'tag veil_class = pii',
               'tag veil_class = pii__card'
             ) THEN NULL
             ELSE NULLIF(detach_sql, '')
           END AS detach,
           drop_sql AS drop_it
      FROM veil.applied_object
      WHERE object_name NOT IN (
        'POLICY veil_tag__contact ON TABLE app.people',
        'POLICY veil_tag__finance_salary_21247eda ON TABLE app.people',
        'POLICY veil_tag__pii ON TABLE app.people',
        'POLICY veil_tag__pii_card_d81b6fdf ON TABLE app.people',
        'veil.mask__app__people__born',
        'veil.mask__app__people__card',
        'veil.mask__app__people__email',
        'veil.mask__app__people__name',
        'veil.mask__app__people__phone',
        'veil.mask__app__people__salary',
        'veil.mask__tag__contact',
        'veil.mask__tag__finance_salary_b65e531f',
        'veil.mask__tag__pii',
        'veil.mask__tag__pii_card_ae7b34b7'
      )
      -- A policy is dropped before the function it names, whatever the names are.
      ORDER BY CASE WHEN object_kind = 'column mask policy' THEN 0 ELSE 1 END, 1
-- veil runtime: clean-up loop, retired objects, auditors

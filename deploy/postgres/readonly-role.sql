-- The read-only database role of the dashboard.
--
-- The dashboard only reads the trial store (the search driver is its only
-- writer), so it connects as a role that holds nothing but SELECT: a bug or a
-- hostile page can then never change a study, whatever the application does.
-- `default_transaction_read_only` is set too, but only as a second line: a
-- session may switch that off, privileges it cannot.
--
-- Run it with psql 15+ (it uses \getenv, \if and \gexec) after `nas db upgrade`,
-- connected as the role that owns the store's tables (the one in NAS_STORAGE)
-- or as an administrator; it is idempotent, so run it again after every
-- upgrade or password change:
--
--   NAS_DASHBOARD_DB_PASSWORD='...' psql "postgresql://nas@db.example.org:5432/nas" \
--       -v owner=nas -v ro_user=nas_dashboard -v schema=public -f deploy/postgres/readonly-role.sql
--
-- Variables (psql -v NAME=VALUE):
--   owner    role that owns the tables and runs `nas db upgrade` (default: the connected user);
--            tables it creates later (new migrations) are readable by ro_user without re-running this
--   ro_user  the read-only role to create or update (default: nas_dashboard)
--   schema   schema holding the store (default: public; the `search_path` of the storage URL)
-- The password comes from the environment variable NAS_DASHBOARD_DB_PASSWORD, never
-- from the command line (visible to every user in the process list) or from this file.
-- Nothing here echoes it; keep the server's log_statement at its default ('none')
-- so that the server does not log it either.
--
-- On PostgreSQL 14 and older every role may create tables in the public schema
-- unless that is revoked (the default since 15); do it once, as an administrator:
--   REVOKE CREATE ON SCHEMA public FROM PUBLIC;

\set ON_ERROR_STOP on
\set QUIET on

\if :{?owner}
\else
  \set owner :USER
\endif
\if :{?ro_user}
\else
  \set ro_user nas_dashboard
\endif
\if :{?schema}
\else
  \set schema public
\endif

\getenv ro_password NAS_DASHBOARD_DB_PASSWORD
\if :{?ro_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'set NAS_DASHBOARD_DB_PASSWORD to the password of the read-only role'; END $$;
\endif

BEGIN;

SELECT format('CREATE ROLE %I', :'ro_user')
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'ro_user') \gexec

ALTER ROLE :"ro_user" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'ro_password';
ALTER ROLE :"ro_user" SET default_transaction_read_only = on;

GRANT CONNECT ON DATABASE :"DBNAME" TO :"ro_user";
GRANT USAGE ON SCHEMA :"schema" TO :"ro_user";
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO :"ro_user";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema" GRANT SELECT ON TABLES TO :"ro_user";

COMMIT;

\echo 'read-only role' :"ro_user" 'can read schema' :"schema" 'of database' :"DBNAME"

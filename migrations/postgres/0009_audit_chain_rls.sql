-- Chain heads are tenant data as well (PostgreSQL dialect). Without a policy any application
-- transaction could move another org's head (its verification would then report a break) or read
-- how busy another org is. The same wall as audit_events: a transaction sees and moves the head of
-- its own org's chain, and the platform chain's only outside any tenant.
ALTER TABLE audit_chains ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_chains_tenant ON audit_chains FOR ALL
    USING (chain = current_setting('strongroom.org_id', true)
           OR (chain = 'platform' AND COALESCE(current_setting('strongroom.org_id', true), '') = ''))
    WITH CHECK (chain = current_setting('strongroom.org_id', true)
           OR (chain = 'platform' AND COALESCE(current_setting('strongroom.org_id', true), '') = ''));

-- The retention job walks every chain; it learns their names (and nothing else) here. The policy
-- is not forced, so this function, running as the owner of the table, sees every row.
CREATE FUNCTION audit_chain_names() RETURNS SETOF TEXT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT chain FROM audit_chains ORDER BY chain
$$;
REVOKE ALL ON FUNCTION audit_chain_names() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_chain_names() TO strongroom_app;

-- Entering a tenant in one statement: the transaction's tenant context (SET LOCAL of
-- strongroom.org_id and strongroom.user_id), the app role again when the login is privileged (so a
-- pooler's RESET ROLE cannot bring privileges back), and the caller's access, all in one round trip.
-- The access query runs after the context is set (PL/pgSQL runs its statements in order), so
-- row-level security applies to it as to any other. SECURITY INVOKER: it grants nothing.
CREATE FUNCTION strongroom_enter(p_org TEXT, p_user TEXT, p_workspace TEXT, p_role TEXT)
RETURNS TABLE (role TEXT, require_mfa BIGINT, key_version BIGINT, key_wrapped BYTEA,
               ws_found BIGINT, ws_statuses TEXT, ws_role TEXT)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
    PERFORM set_config('strongroom.org_id', p_org, true), set_config('strongroom.user_id', p_user, true);
    IF p_role <> '' THEN
        PERFORM set_config('role', p_role, true);
    END IF;
    RETURN QUERY
        SELECT m.role, CAST(o.require_mfa AS BIGINT), CAST(k.version AS BIGINT), k.wrapped,
               CAST(CASE WHEN w.id IS NULL THEN 0 ELSE 1 END AS BIGINT), w.statuses, wm.role
        FROM org_members m
        JOIN orgs o ON o.id = m.org_id
        JOIN data_keys k ON k.id = m.org_id
        LEFT JOIN workspaces w ON w.org_id = m.org_id AND w.id = p_workspace
        LEFT JOIN workspace_members wm
               ON wm.org_id = m.org_id AND wm.workspace_id = w.id AND wm.user_id = m.user_id
        WHERE m.org_id = p_org AND m.user_id = p_user
        ORDER BY k.version DESC LIMIT 1;
END
$$;
GRANT EXECUTE ON FUNCTION strongroom_enter(TEXT, TEXT, TEXT, TEXT) TO strongroom_app;

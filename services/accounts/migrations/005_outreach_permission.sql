-- Issue 20 (OUT-6): the permission manage_outreach (contact lists, segments, campaigns,
-- the unsubscribe list, notifications) joins the built-in admin and supervisor roles of
-- tenants created before it existed, as new tenants get it.
UPDATE roles SET permissions = array_append(permissions, 'manage_outreach'), updated_at = now()
 WHERE builtin AND name IN ('admin', 'supervisor')
   AND NOT ('manage_outreach' = ANY (permissions));

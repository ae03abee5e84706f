-- Web inquiry forms (ING-2): each posts into one inbox.
CREATE TABLE forms (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    inbox_id      uuid NOT NULL,
    inbox_name    text NOT NULL,
    name          text NOT NULL,
    redirect_url  text NOT NULL DEFAULT '',
    enabled       boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL
);
CREATE INDEX forms_tenant ON forms (tenant_id, created_at);

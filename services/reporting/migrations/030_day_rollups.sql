-- Calendar rollups in the tenant's own time zone — per local day, ISO week and month —
-- and sparse histograms (issue 19, docs/architecture.md "Reporting": a 13-month report by
-- day reads ~400 rows per key instead of ~9,500 hours, by week ~57, by month ~13).

-- The zone whose local days rollups_day holds, per tenant: the tenant's time zone
-- (accounts' TenantSettings.time_zone), learned when a report runs. When it changes the
-- day rows are rebuilt from the facts in the background (day_rollups.py); until `ready`
-- the reports read the hourly rollups.
CREATE TABLE report_zones (
    tenant_id   uuid PRIMARY KEY,
    zone        text NOT NULL,
    ready       boolean NOT NULL DEFAULT false,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- As rollups_hour, with `bucket` the local calendar day in report_zones.zone (the week's
-- Monday, the month's first day in the others).
CREATE TABLE rollups_day (
    tenant_id      uuid NOT NULL,
    metric         text NOT NULL,
    dimension      text NOT NULL,
    bucket         date NOT NULL,
    inbox_id       uuid NOT NULL,
    value          text NOT NULL,
    count          bigint NOT NULL,
    sum_wall       double precision NOT NULL,
    sum_business   double precision NOT NULL,
    hist_wall      integer[],
    hist_business  integer[],
    PRIMARY KEY (tenant_id, metric, dimension, bucket, inbox_id, value)
);
CREATE TABLE rollups_week (LIKE rollups_day INCLUDING ALL);
CREATE TABLE rollups_month (LIKE rollups_day INCLUDING ALL);

-- Sparse histograms: a row holding one duration stores no array (NULL): its histogram is
-- the bucket of its sum. '{}' stays a count-only row's. Older full arrays stay valid.
ALTER TABLE rollups_hour ALTER COLUMN hist_wall DROP NOT NULL,
                         ALTER COLUMN hist_business DROP NOT NULL;
ALTER TABLE rollups_15m ALTER COLUMN hist_wall DROP NOT NULL,
                        ALTER COLUMN hist_business DROP NOT NULL;

-- A row's full histogram: its array, or (NULL: one duration) the bucket of its sum
-- among `edges` (services/reporting/histogram.py EDGES_S, passed by the caller).
CREATE FUNCTION hist_full(h integer[], s double precision, edges double precision[])
RETURNS integer[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN h IS NOT NULL THEN h ELSE
        array_fill(0, ARRAY[greatest(width_bucket(s, edges), 1) - 1]) || 1
        || array_fill(0, ARRAY[cardinality(edges) - greatest(width_bucket(s, edges), 1)])
    END
$$;

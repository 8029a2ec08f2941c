-- The control-plane schema the usage-reporting job reads (migrations/README.md describes it).
-- Applied in order by file name; each file runs in one transaction and records its version.

CREATE TABLE schema_version (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- A tenant of the platform. `slug` is the machine name: the `tenant` label of the gateway's
-- metrics; `name` is for people and may hold any Unicode.
CREATE TABLE tenants (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug       text        NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    name       text        NOT NULL CHECK (length(name) > 0),
    -- The prefix of the department's Kafka Connect connectors (`<department>.<name>`).
    department text        NOT NULL UNIQUE CHECK (department ~ '^[A-Za-z0-9_-]+$'),
    -- The value of the `project` tag (AWS) or annotation (Kubernetes) on the tenant's resources.
    project    text        NOT NULL UNIQUE CHECK (length(project) > 0),
    active     boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Who receives the tenant's usage report and quota warnings.
CREATE TABLE tenant_contacts (
    tenant_id bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email     text   NOT NULL CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
    role      text   NOT NULL DEFAULT 'owner' CHECK (role IN ('owner', 'billing', 'technical')),
    PRIMARY KEY (tenant_id, email)
);

-- APIs a tenant publishes on the gateway.
CREATE TABLE apis (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    slug      text   NOT NULL UNIQUE,
    name      text   NOT NULL
);

-- A tenant's client applications; `slug` is the `application` label of the gateway's metrics.
CREATE TABLE applications (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    slug      text   NOT NULL UNIQUE,
    name      text   NOT NULL
);

CREATE TABLE users (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email     text   NOT NULL,
    active    boolean NOT NULL DEFAULT true,
    UNIQUE (tenant_id, email)
);

-- An application's subscription to an API (of any tenant).
CREATE TABLE subscriptions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id bigint NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    api_id         bigint NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    plan           text   NOT NULL DEFAULT 'default',
    active         boolean NOT NULL DEFAULT true,
    UNIQUE (application_id, api_id)
);

-- Quotas: one platform default per dimension, and per-tenant overrides. A limit of 0 means
-- "none allowed". Dimensions are the job's (README, "Usage and quota reports").
CREATE TABLE quota_defaults (
    dimension   text    PRIMARY KEY CHECK (dimension ~ '^[a-z0-9_]+$'),
    limit_value numeric NOT NULL CHECK (limit_value >= 0)
);

CREATE TABLE tenant_quotas (
    tenant_id   bigint  NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    dimension   text    NOT NULL CHECK (dimension ~ '^[a-z0-9_]+$'),
    limit_value numeric NOT NULL CHECK (limit_value >= 0),
    PRIMARY KEY (tenant_id, dimension)
);

-- The platform's defaults (the issue's figures); operators change them with UPDATE.
INSERT INTO quota_defaults (dimension, limit_value) VALUES
    ('ec2_instances', 10),
    ('rds_instances', 3),
    ('s3_buckets', 5),
    ('lambda_functions', 20),
    ('k8s_namespaces', 5),
    ('ebs_volume_gb', 500),
    ('eks_node_groups', 2),
    ('kafka_connectors', 5),
    ('kafka_connect_tasks', 15),
    ('api_calls_per_month', 1000000),
    ('bandwidth_gb_per_month', 100);

INSERT INTO schema_version (version) VALUES (1);

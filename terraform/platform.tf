# The operator (manifests/base, with its CRD) and one SocialHub, installed into the cluster.

locals {
  namespace        = "socialhub"
  postgres_url     = "postgresql+asyncpg://socialhub:${random_password.postgres.result}@${aws_db_instance.postgres.address}:5432"
  service_database = { auth = "socialhub_auth", users = "socialhub_users", posts = "socialhub_posts" }

  # The Secrets the SocialHub's spec.backing names (keys as the CRD documents them).
  backing_secrets = {
    socialhub-postgres = { for service, database in local.service_database : service => "${local.postgres_url}/${database}" }
    socialhub-redis    = { url = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379/0" }
    socialhub-kafka    = { bootstrapServers = aws_msk_cluster.kafka.bootstrap_brokers }
    socialhub-mongo    = { url = "mongodb://socialhub:${random_password.docdb.result}@${aws_docdb_cluster.mongo.endpoint}:27017/?replicaSet=rs0&retryWrites=false" }
  }

  socialhub = {
    apiVersion = "socialhub.dev/v1alpha1"
    kind       = "SocialHub"
    metadata   = { name = var.name, namespace = local.namespace }
    spec = {
      image    = var.socialhub_image
      version  = var.socialhub_version
      capacity = var.capacity
      backing = {
        postgres = { secretName = "socialhub-postgres" }
        redis    = { secretName = "socialhub-redis" }
        kafka    = { secretName = "socialhub-kafka", replicationFactor = 3, partitions = 6 }
        mongo    = { secretName = "socialhub-mongo", database = "socialhub" }
      }
      gateway = { host = var.gateway_host, serviceType = "LoadBalancer", trustedProxies = [var.vpc_cidr] }
    }
  }
}

data "kustomization_overlay" "operator" {
  resources = ["${path.module}/../manifests/base"]

  images {
    name    = "ghcr.io/socialhub/socialhub-operator"
    new_tag = var.operator_image_tag
  }
}

# CRDs and namespaces first (p0), then everything else (p1), as the provider recommends.
resource "kustomization_resource" "operator_p0" {
  for_each = data.kustomization_overlay.operator.ids_prio[0]
  manifest = data.kustomization_overlay.operator.manifests[each.value]

  depends_on = [aws_eks_node_group.default]
}

resource "kustomization_resource" "operator_p1" {
  for_each = data.kustomization_overlay.operator.ids_prio[1]
  manifest = data.kustomization_overlay.operator.manifests[each.value]

  depends_on = [kustomization_resource.operator_p0]
}

resource "kustomization_resource" "namespace" {
  manifest = jsonencode({ apiVersion = "v1", kind = "Namespace", metadata = { name = local.namespace } })

  depends_on = [aws_eks_node_group.default]
}

resource "kustomization_resource" "backing_secret" {
  for_each = local.backing_secrets
  manifest = jsonencode({
    apiVersion = "v1"
    kind       = "Secret"
    metadata   = { name = each.key, namespace = local.namespace }
    type       = "Opaque"
    stringData = each.value
  })

  depends_on = [kustomization_resource.namespace]
}

# RDS starts with one database; each service owns its own, created once from inside the VPC.
resource "kustomization_resource" "create_databases" {
  manifest = jsonencode({
    apiVersion = "batch/v1"
    kind       = "Job"
    metadata   = { name = "create-databases", namespace = local.namespace }
    spec = {
      backoffLimit = 10
      template = {
        spec = {
          restartPolicy = "OnFailure"
          containers = [{
            name    = "psql"
            image   = "postgres:15-alpine"
            command = ["sh", "-c", join(" && ", [for database in values(local.service_database) : "(psql -tAc \"SELECT 1 FROM pg_database WHERE datname = '${database}'\" | grep -q 1 || psql -c 'CREATE DATABASE ${database}')"])]
            env = [
              { name = "PGHOST", value = aws_db_instance.postgres.address },
              { name = "PGUSER", value = "socialhub" },
              { name = "PGDATABASE", value = "socialhub" },
              { name = "PGPASSWORD", value = random_password.postgres.result },
            ]
          }]
        }
      }
    }
  })

  depends_on = [kustomization_resource.namespace]
}

resource "kustomization_resource" "socialhub" {
  manifest = jsonencode(local.socialhub)

  depends_on = [
    kustomization_resource.operator_p1,
    kustomization_resource.backing_secret,
    kustomization_resource.create_databases,
  ]
}

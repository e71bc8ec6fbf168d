output "cluster_name" {
  description = "EKS cluster; `aws eks update-kubeconfig --name <this>` to use kubectl."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "socialhub" {
  description = "Namespace/name of the SocialHub resource (kubectl get shub -n <namespace>)."
  value       = "${local.namespace}/${var.name}"
}

output "postgres_address" {
  description = "RDS PostgreSQL endpoint."
  value       = aws_db_instance.postgres.address
}

output "kafka_bootstrap_brokers" {
  description = "MSK bootstrap brokers (plaintext, inside the VPC)."
  value       = aws_msk_cluster.kafka.bootstrap_brokers
}

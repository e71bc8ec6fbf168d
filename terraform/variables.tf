variable "name" {
  description = "Name of the stack: prefixes every AWS resource and names the SocialHub."
  type        = string
  default     = "socialhub"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,29}$", var.name))
    error_message = "name must be 2-30 lowercase letters, digits or dashes (the CRD allows at most 30)."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_cidr" {
  description = "CIDR of the VPC; split into three public and three private subnets."
  type        = string
  default     = "10.40.0.0/16"
}

variable "kubernetes_version" {
  description = "EKS control plane version (the operator is tested against 1.33)."
  type        = string
  default     = "1.33"
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["m6i.xlarge"]
}

variable "node_count" {
  description = "Desired, minimum and maximum nodes of the managed node group."
  type        = object({ desired = number, min = number, max = number })
  default     = { desired = 3, min = 3, max = 12 }
}

variable "postgres_instance_class" {
  description = "RDS PostgreSQL instance class (auth, users and posts databases)."
  type        = string
  default     = "db.m6g.large"
}

variable "redis_node_type" {
  description = "ElastiCache Redis node type (cache, rate limits, chat pub/sub)."
  type        = string
  default     = "cache.m6g.large"
}

variable "kafka_instance_type" {
  description = "MSK broker instance type (POST_TOPIC, USER_TOPIC)."
  type        = string
  default     = "kafka.m5.large"
}

variable "docdb_instance_class" {
  description = "DocumentDB (MongoDB-compatible) instance class (notifications)."
  type        = string
  default     = "db.r6g.large"
}

variable "operator_image_tag" {
  description = "Tag of the socialhub-operator image."
  type        = string
  default     = "0.1.0"
}

variable "socialhub_image" {
  description = "Repository of the services image."
  type        = string
  default     = "ghcr.io/socialhub/socialhub"
}

variable "socialhub_version" {
  description = "Tag of the services image the SocialHub runs."
  type        = string
  default     = "0.1.0"
}

variable "capacity" {
  description = "Capacity targets of the SocialHub (spec.capacity); the operator sizes autoscalers from them."
  type        = map(number)
  default = {
    concurrentUsers             = 10000
    loginsPerSecond             = 500
    tokenChecksPerSecond        = 5000
    postsPerSecond              = 200
    followsPerSecond            = 1000
    chatConnections             = 5000
    chatMessagesPerSecond       = 10000
    notificationEventsPerSecond = 10000
  }
}

variable "gateway_host" {
  description = "Public host name of the gateway (empty: any host)."
  type        = string
  default     = ""
}

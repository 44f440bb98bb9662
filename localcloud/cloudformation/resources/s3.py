"""S3 buckets (encryption, lifecycle, logging, notifications) and bucket policies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from localcloud.cloudformation.models import (
    DeployContext,
    DeployedResource,
    ResourceKind,
    UnsupportedPropertyError,
)
from localcloud.cloudformation.properties import (
    present_properties,
    tag_list,
)

_LIFECYCLE_RULE_KEYS = {
    "Id",
    "Status",
    "Prefix",
    "ExpirationInDays",
    "ExpirationDate",
    "ExpiredObjectDeleteMarker",
    "NoncurrentVersionExpiration",
    "NoncurrentVersionExpirationInDays",
    "AbortIncompleteMultipartUpload",
    "Transitions",
    "NoncurrentVersionTransitions",
}


def _lifecycle_rule(logical_id: str, rule: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(rule) - _LIFECYCLE_RULE_KEYS)
    if unknown:
        raise UnsupportedPropertyError(f"{logical_id}: lifecycle rule keys {unknown} are not translated")
    translated: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        translated["ID"] = rule["Id"]
    expiration = present_properties(
        rule,
        {
            "ExpirationInDays": "Days",
            "ExpirationDate": "Date",
            "ExpiredObjectDeleteMarker": "ExpiredObjectDeleteMarker",
        },
    )
    if expiration:
        translated["Expiration"] = expiration
    if "NoncurrentVersionExpiration" in rule:
        translated["NoncurrentVersionExpiration"] = dict(rule["NoncurrentVersionExpiration"])
    elif "NoncurrentVersionExpirationInDays" in rule:
        translated["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": rule["NoncurrentVersionExpirationInDays"]
        }
    if "AbortIncompleteMultipartUpload" in rule:
        translated["AbortIncompleteMultipartUpload"] = dict(rule["AbortIncompleteMultipartUpload"])
    if "Transitions" in rule:
        translated["Transitions"] = [
            {
                "StorageClass": t["StorageClass"],
                **present_properties(t, {"TransitionInDays": "Days", "TransitionDate": "Date"}),
            }
            for t in rule["Transitions"]
        ]
    if "NoncurrentVersionTransitions" in rule:
        translated["NoncurrentVersionTransitions"] = [
            {"StorageClass": t["StorageClass"], "NoncurrentDays": t["TransitionInDays"]}
            for t in rule["NoncurrentVersionTransitions"]
        ]
    return translated


def _create_bucket(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    s3 = ctx.client("s3")
    name = ctx.name(logical_id, props.get("BucketName"), max_length=63, lower=True)
    if ctx.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": ctx.region})
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=props["OwnershipControls"])
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
        )
    if "BucketEncryption" in props:
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": dict(rule["ServerSideEncryptionByDefault"]),
                **present_properties(rule, {"BucketKeyEnabled": "BucketKeyEnabled"}),
            }
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "LifecycleConfiguration" in props:
        rules = [_lifecycle_rule(logical_id, rule) for rule in props["LifecycleConfiguration"]["Rules"]]
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    if props.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(props)})
    if "NotificationConfiguration" in props:
        s3.put_bucket_notification_configuration(
            Bucket=name,
            NotificationConfiguration=_notifications(logical_id, props["NotificationConfiguration"]),
        )
    if "LoggingConfiguration" in props:
        logging = props["LoggingConfiguration"]
        enabled = {
            "TargetBucket": logging["DestinationBucketName"],
            "TargetPrefix": logging.get("LogFilePrefix", ""),
        }
        # After every resource: moto checks the target's bucket policy, which names this bucket.
        ctx.deferred.append(
            lambda: s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={"LoggingEnabled": enabled})
        )
    attributes = {
        "Arn": f"arn:{ctx.resolver.environment.partition}:s3:::{name}",
        "DomainName": f"{name}.s3.{ctx.resolver.environment.url_suffix}",
        "RegionalDomainName": f"{name}.s3.{ctx.region}.{ctx.resolver.environment.url_suffix}",
    }
    return DeployedResource(logical_id, "AWS::S3::Bucket", name, name, attributes)


def _notifications(logical_id: str, notification: Mapping[str, Any]) -> dict[str, Any]:
    """Amazon EventBridge delivery (the only kind the stack uses): moto then puts "Object Created" and the
    other S3 events on the default bus, where the stack's rules match them."""
    others = sorted(set(notification) - {"EventBridgeConfiguration"})
    if others:
        raise UnsupportedPropertyError(
            f"{logical_id}: NotificationConfiguration.{', '.join(others)} is not translated; only "
            "EventBridgeConfiguration is"
        )
    enabled = notification.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled", False)
    return {"EventBridgeConfiguration": {}} if enabled else {}


def _denies_plain_http(statement: Mapping[str, Any]) -> bool:
    condition = statement.get("Condition", {}).get("Bool", {})
    return statement.get("Effect") == "Deny" and str(condition.get("aws:SecureTransport")).lower() == "false"


def _put_bucket_policy(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> DeployedResource:
    bucket = str(props["Bucket"])
    document = dict(props["PolicyDocument"])
    # moto evaluates aws:SecureTransport, and the local cloud's endpoint is plain HTTP on loopback: the
    # TLS-only statements would refuse every call. Every other statement is stored as the template has it.
    document["Statement"] = [s for s in document.get("Statement", []) if not _denies_plain_http(s)]
    ctx.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    return DeployedResource(logical_id, "AWS::S3::BucketPolicy", bucket, bucket)


S3_KINDS: Mapping[str, ResourceKind] = {
    "AWS::S3::Bucket": ResourceKind(
        _create_bucket,
        frozenset(
            {
                "BucketName",
                "BucketEncryption",
                "LifecycleConfiguration",
                "LoggingConfiguration",
                "NotificationConfiguration",
                "OwnershipControls",
                "PublicAccessBlockConfiguration",
                "VersioningConfiguration",
                "Tags",
            }
        ),
    ),
    "AWS::S3::BucketPolicy": ResourceKind(_put_bucket_policy, frozenset({"Bucket", "PolicyDocument"})),
}

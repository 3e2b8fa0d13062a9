"""What to set in the stack's config, said once: the Pulumi provider's errors (`pulumi up`), the runner's
errors, its recovery and `runner doctor` all quote these. No imports: cheap for every command."""

SPOT_FALLBACK = (
    "`pulumi config set spotFallback on-demand` and `pulumi config set maxOnDemandPricePerGpu <USD per GPU-hour>`"
)
RAISE_CAP = "`pulumi config set maxOnDemandPricePerGpu <USD per GPU-hour>`"
# In the provider's error when RunPod has no GPU for a new pod; the runner recognises a `pulumi up` that
# failed for want of a GPU by it (exit 4, and --wait-for-capacity waits it out).
NO_GPU = "no GPU for the pod right now"


def raise_bid(bid: str) -> str:
    return f"`pulumi config set bidPerGpu {bid}`"


__all__ = ["NO_GPU", "RAISE_CAP", "SPOT_FALLBACK", "raise_bid"]

"""UN M49 regions: the tree shipped as package data, and region inference from item text."""

from publisher.regions.infer import Mention, RegionInferrer, evaluate, exact_match
from publisher.regions.tree import Region, RegionTree

__all__ = ["Mention", "Region", "RegionInferrer", "RegionTree", "evaluate", "exact_match"]

"""Learning paths: the sequence of a policy's weights through one training run, on disk."""

from tipl_opt.paths.check import check_file, check_folder
from tipl_opt.paths.format import FORMAT_VERSION, SUFFIX
from tipl_opt.paths.reader import LearningPath, PathDataset
from tipl_opt.paths.spec import ParamSpec, Snapshot, TaggedParam, flatten, unflatten
from tipl_opt.paths.writer import PathWriter

__all__ = [
    "FORMAT_VERSION",
    "SUFFIX",
    "LearningPath",
    "ParamSpec",
    "PathDataset",
    "PathWriter",
    "Snapshot",
    "TaggedParam",
    "check_file",
    "check_folder",
    "flatten",
    "unflatten",
]

"""Evaluation against labelled images: detectors (`evaluate`) and whole-image classifiers
(`evaluate_classifier`). See docs/evaluation.md for what each number means.

Example:
    >>> from edgewatch.evaluate import evaluate, load_truth, read_run_json  # doctest: +SKIP
    >>> classes, truth = load_truth("dataset/valid", "yolo")  # doctest: +SKIP
    >>> print(evaluate(truth, read_run_json("run.jsonl", classes), classes).table())  # doctest: +SKIP
"""

from edgewatch.evaluate.classification import (
    classifier_table,
    evaluate_classifier,
    is_class_folders,
    load_class_folders,
    read_run_classifications,
)
from edgewatch.evaluate.detection import (
    TRUTH_FORMATS,
    ClassScores,
    Evaluation,
    PRCurve,
    by_file_name,
    compare,
    evaluate,
    load_truth,
    load_truth_dataset,
    match,
    pr_curve_png,
    read_coco_results,
    read_evaluation,
    read_predictions,
    read_run_json,
)
from edgewatch.evaluate.predict import load_model, predict_boxes, predict_labels, table_score

__all__ = [
    "TRUTH_FORMATS",
    "ClassScores",
    "Evaluation",
    "PRCurve",
    "by_file_name",
    "classifier_table",
    "compare",
    "evaluate",
    "evaluate_classifier",
    "is_class_folders",
    "load_class_folders",
    "load_model",
    "load_truth",
    "load_truth_dataset",
    "match",
    "pr_curve_png",
    "predict_boxes",
    "predict_labels",
    "read_coco_results",
    "read_evaluation",
    "read_predictions",
    "read_run_classifications",
    "read_run_json",
    "table_score",
]

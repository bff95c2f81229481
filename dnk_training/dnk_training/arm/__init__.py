"""The arm task: seeded scenes, B-spline demonstrations, windows for the teacher (issue: the arm, distilled)."""

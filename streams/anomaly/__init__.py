"""Online anomaly detection for KPI series and silent feeds (pure, no Kafka).

* :class:`AnomalyDetector` (:mod:`.detector`): the seasonal, robust, change-point aware
  detector behind the ``kpi_anomaly`` rule; ``AnomalyDetector(...).update(ts, value)``
  returns a score in [0, 1].
* :class:`EwmaDetector` (:mod:`.ewma`): the first EWMA z-score detector, kept as a baseline.
* :mod:`.silence`: the learnt arrival rhythm of a feed in working time (``feed_silence``).
* :mod:`.calibration`, :mod:`.season`, :mod:`.counts`: the score scale, the calendar slots,
  the scale counts are modelled on; :mod:`.learn`, :mod:`.episode`, :mod:`.evidence`,
  :mod:`.knobs`, :mod:`.persist`: the detector's learning step, episodes, alert evidence,
  settings and state.
"""

from streams.anomaly.detector import COMPONENTS, AnomalyDetector
from streams.anomaly.ewma import EwmaDetector

__all__ = ["COMPONENTS", "AnomalyDetector", "EwmaDetector"]
